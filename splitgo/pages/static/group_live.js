// A group's pages, live (loaded by templates/group_layout.html); without JavaScript the
// pages are whole as they are, and a reload shows what changed.
//
// Live regions. One WebSocket per tab, to GET /live (the browser's twin of /api/v1/ws,
// signed in by the session cookie). When a frame about the open group arrives — a
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
// Every frame is also dispatched on `document` as a "splitgo:live" CustomEvent (the frame
// in `detail`), so another module on a group page can listen without a socket of its own.
//
// Also here: a link with data-opens-dialog="<id>" opens that <dialog> instead of going to
// its no-JavaScript confirmation page; a button with data-closes-dialog closes its dialog;
// a hidden button with data-copy copies the [data-copy-source] input beside it.

const page = document.querySelector(".group-page[data-group-id]");
const groupId = page?.dataset.groupId;
const announcer = page?.querySelector("[data-live-announce]");
const reduced = window.matchMedia("(prefers-reduced-motion: reduce)");
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const FADE_MS = 150;

function localiseTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(time.dateTime);
    if (!Number.isNaN(moment.getTime())) time.textContent = timeFormat.format(moment);
  }
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function refreshRegion(region) {
  const response = await fetch(region.dataset.liveSrc, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (!response.ok) return false;
  const html = await response.text();
  if (region.contains(document.activeElement)) {
    // never pull a control out from under the keyboard: the next event brings it in
    region.dataset.liveStale = "true";
    return false;
  }
  if (!reduced.matches) {
    region.classList.add("live-fading");
    await wait(FADE_MS);
  }
  region.innerHTML = html;
  delete region.dataset.liveStale;
  localiseTimes(region);
  region.classList.remove("live-fading");
  return true;
}

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

let delay = 1000;
let connectedBefore = false;

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/live`);
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    // other modules of the page may listen to the same socket (one per tab)
    document.dispatchEvent(new CustomEvent("splitgo:live", { detail: frame }));
    if (frame.type === "hello") {
      delay = 1000;
      page.dataset.live = "connected";
      if (connectedBefore) schedule("The page is up to date again.");
      connectedBefore = true;
      return;
    }
    if (aboutThisGroup(frame)) {
      schedule(frame.notification?.title ? `Updated: ${frame.notification.title}` : "Updated.");
    }
  });
  socket.addEventListener("close", () => {
    page.dataset.live = "closed";
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  });
}

if (page && groupId && "WebSocket" in window) connect();

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
