// The unread badges of the navigation — Notifications and Messages — kept current while
// a page is open. The server renders each badge (/notifications/badge, /messages/badge:
// fragments); this module swaps one in when the page was rendered without it, and again
// whenever it may have changed: at once when a frame about it arrives over the tab's
// WebSocket (live_socket.js, GET /live: `notification` for the first; `chat_message`,
// `chat_read` and `chat_message_deleted` for the second), after that socket comes back,
// and when the tab is shown again; a browser without WebSockets asks every 30 seconds
// while the tab is seen. On the notifications page a change also brings the feed in
// afresh. Without JavaScript the counts are as the page was rendered.

import { available, subscribe } from "./live_socket.js";

const POLL_MS = 30_000;
const CHAT_FRAMES = new Set(["chat_message", "chat_read", "chat_message_deleted"]);
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

const badges = [
  {
    slot: document.querySelector("[data-unread-badge]"),
    url: "/notifications/badge",
    about: (frame) => frame?.type === "notification",
    feed: true,
  },
  {
    slot: document.querySelector("[data-chat-badge]"),
    url: "/messages/badge",
    about: (frame) => CHAT_FRAMES.has(frame?.type),
    feed: false,
  },
].filter((badge) => badge.slot);

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

async function refresh(badge) {
  let answer;
  try {
    answer = await fetchHtml(badge.url);
  } catch {
    return; // offline for a moment: the next turn asks again
  }
  if (!answer) return;
  const before = countOf(badge.slot);
  badge.slot.replaceChildren(
    ...[...answer.body.childNodes].map((node) => document.adoptNode(node)),
  );
  const after = countOf(badge.slot);
  if (before >= 0 && after !== before) {
    badge.slot.querySelector(".nav-badge")?.classList.add("arrived");
    if (badge.feed) await refreshFeed();
  }
  badge.slot.dataset.refreshed = String(Number(badge.slot.dataset.refreshed ?? "0") + 1);
}

function refreshAll() {
  for (const badge of badges) refresh(badge);
}

if (badges.length) {
  for (const badge of badges) if (!badge.slot.querySelector(".nav-badge")) refresh(badge);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) refreshAll();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshAll();
  });
  if (available()) {
    subscribe(
      (frame) => {
        for (const badge of badges) if (badge.about(frame)) refresh(badge);
      },
      { reconnected: refreshAll },
    );
  } else {
    setInterval(() => {
      if (document.visibilityState === "visible") refreshAll();
    }, POLL_MS);
  }
}
