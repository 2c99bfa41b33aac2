// A group's pages, live (loaded by templates/group_layout.html); without JavaScript the
// pages are whole as they are, and a reload shows what changed.
//
// Live regions. One WebSocket per tab, to GET /live (the browser's twin of /api/v1/ws,
// signed in by the session cookie), shared through live_socket.js. When a frame about the open group arrives — a
// notification whose data.group_id is this group (an expense added, changed or deleted, a
// member added, a settlement), or any frame carrying that group_id — every element inside
// `.group-page[data-group-id]` that has
//     data-live-region="<name>" data-live-src="<url>"
// gets its inner HTML again from <url>: a fragment the server renders as the page does
// (the server stays the only renderer). Regions of the shell: "balance"
// (/groups/{id}/live/balance); of the Members tab: "members"; of the Activity tab:
// "activity". Any page of a group adds its own region by these two attributes alone (the
// Expenses tab: id="expenses-region" data-live-region="expenses" data-live-src=<its
// fragment URL>). A swap fades briefly (not under prefers-reduced-motion), and the live
// status says what changed. After a lost connection, the socket comes back (waiting
// longer each time) and the regions are refreshed once, for what was missed.
//
// live_socket.js also dispatches every frame on `document` as a "splitgo:live"
// CustomEvent (the frame in `detail`), for modules that listen without subscribing.
//
// Also here: a link with data-opens-dialog="<id>" opens that <dialog> instead of going to
// its no-JavaScript confirmation page; a button with data-closes-dialog closes its dialog;
// a hidden button with data-copy copies the [data-copy-source] input beside it.

import { subscribe } from "./live_socket.js";
import { refreshRegion } from "./live_regions.js";

const page = document.querySelector(".group-page[data-group-id]");
const groupId = page?.dataset.groupId;
const announcer = page?.querySelector("[data-live-announce]");
let pending = null;
let lastWords = "";

async function refreshAll() {
  pending = null;
  const regions = page.querySelectorAll("[data-live-region][data-live-src]");
  const results = await Promise.allSettled([...regions].map(refreshRegion));
  const changed = results.some((result) => result.status === "fulfilled" && result.value);
  if (changed && announcer && lastWords) {
    announcer.textContent = "";
    announcer.textContent = lastWords;
  }
  page.dataset.liveRefreshed = String(Number(page.dataset.liveRefreshed ?? "0") + 1);
}

function schedule(words) {
  if (words) lastWords = words;
  if (pending === null) pending = setTimeout(refreshAll, 100);
}

function aboutThisGroup(frame) {
  if (frame?.group_id === groupId) return true;
  const notice = frame?.notification;
  return Boolean(notice && notice.data && notice.data.group_id === groupId);
}

function listen() {
  // the tab's one socket (live_socket.js), shared with the unread badge and the rest
  subscribe(
    (frame) => {
      if (aboutThisGroup(frame)) {
        schedule(frame.notification?.title ? `Updated: ${frame.notification.title}` : "Updated.");
      }
    },
    {
      connected: () => {
        page.dataset.live = "connected";
      },
      reconnected: () => schedule("The page is up to date again."),
      closed: () => {
        page.dataset.live = "closed";
      },
    },
  );
}

if (page && groupId && "WebSocket" in window) listen();

// dialogs in place of confirmation pages, and copying a link
for (const opener of document.querySelectorAll("[data-opens-dialog]")) {
  const dialog = document.getElementById(opener.dataset.opensDialog);
  if (!(dialog instanceof HTMLDialogElement) || typeof dialog.showModal !== "function") continue;
  opener.addEventListener("click", (event) => {
    event.preventDefault();
    dialog.showModal();
  });
}
for (const closer of document.querySelectorAll("[data-closes-dialog]")) {
  closer.addEventListener("click", () => closer.closest("dialog")?.close());
}
for (const button of document.querySelectorAll("[data-copy]")) {
  const source = button.closest(".card")?.querySelector("[data-copy-source]");
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.value);
      button.textContent = "Copied";
    } catch {
      source.select();
      button.textContent = "Select and copy it";
    }
  });
}
