// The wallet, live (loaded by templates/wallet.html); without JavaScript a reload shows
// what changed. When money moves for this person (a notification of the "money"
// category: a top-up arriving, money received or sent, a settlement through the wallet)
// every element inside `.wallet-page` with data-live-region and data-live-src gets its
// HTML again from that URL (the balances, and the statement's newest page); after a lost
// connection, once, for what was missed.

import { subscribe } from "./live_socket.js";
import { refreshRegion } from "./live_regions.js";

const page = document.querySelector(".wallet-page");
let pending = null;

async function refreshAll() {
  pending = null;
  const regions = page.querySelectorAll("[data-live-region][data-live-src]");
  await Promise.allSettled([...regions].map(refreshRegion));
  page.dataset.liveRefreshed = String(Number(page.dataset.liveRefreshed ?? "0") + 1);
}

function schedule() {
  if (pending === null) pending = setTimeout(refreshAll, 100);
}

if (page && "WebSocket" in window) {
  subscribe(
    (frame) => {
      if (frame?.notification?.category === "money") schedule();
    },
    {
      connected: () => {
        page.dataset.live = "connected";
      },
      reconnected: schedule,
    },
  );
}
