// The unread badge on the Notifications item of the navigation, kept current while a
// page is open. The server renders the badge (/notifications/badge, a fragment); this
// module swaps it in when the page was rendered without it, and again whenever it may
// have changed: at once when a notification arrives over the tab's WebSocket
// (live_socket.js, GET /live), after that socket comes back, and when the tab is shown
// again; a browser without WebSockets asks every 30 seconds while the tab is seen.
// On the notifications page a change also brings the feed in afresh.
// Without JavaScript the count is as the page was rendered.

import { available, subscribe } from "./live_socket.js";

const POLL_MS = 30_000;
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

const slot = document.querySelector("[data-unread-badge]");

async function fetchHtml(url) {
  const response = await fetch(url, {
    headers: { Accept: "text/html" },
    credentials: "same-origin",
    cache: "no-store",
  });
  if (response.status !== 200) return null;
  return new DOMParser().parseFromString(await response.text(), "text/html");
}

function countOf(element) {
  return Number(element?.querySelector(".nav-badge")?.dataset.unread ?? -1);
}

async function refreshFeed() {
  const shown = document.getElementById("feed");
  if (!shown) return;
  const page = await fetchHtml(window.location.href);
  const fresh = page?.getElementById("feed");
  if (!fresh) return;
  for (const time of fresh.querySelectorAll("time[datetime]")) {
    const moment = new Date(time.dateTime);
    if (!Number.isNaN(moment.getTime())) time.textContent = timeFormat.format(moment);
  }
  shown.replaceWith(document.adoptNode(fresh));
}

async function refresh() {
  let answer;
  try {
    answer = await fetchHtml("/notifications/badge");
  } catch {
    return; // offline for a moment: the next turn asks again
  }
  if (!answer) return;
  const before = countOf(slot);
  slot.replaceChildren(...[...answer.body.childNodes].map((node) => document.adoptNode(node)));
  const after = countOf(slot);
  if (before >= 0 && after !== before) {
    slot.querySelector(".nav-badge")?.classList.add("arrived");
    await refreshFeed();
  }
}

function poll() {
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, POLL_MS);
}

if (slot) {
  if (!slot.querySelector(".nav-badge")) refresh();
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
  if (available()) {
    subscribe(
      (frame) => {
        if (frame?.type === "notification") refresh();
      },
      { reconnected: refresh },
    );
  } else {
    poll();
  }
}
