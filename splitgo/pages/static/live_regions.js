// A live region's refresh, shared by the pages that have them (group_live.js,
// wallet_live.js): an element with data-live-src="<url>" gets its inner HTML again from
// that URL (a fragment the server renders as the page does: the server stays the only
// renderer). The swap fades briefly (not under prefers-reduced-motion), times are put in
// the browser's zone, and a region holding the keyboard's focus is left alone (marked
// data-live-stale) so no control is pulled out from under it.

const reduced = window.matchMedia("(prefers-reduced-motion: reduce)");
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const FADE_MS = 150;

export function localiseTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(time.dateTime);
    if (!Number.isNaN(moment.getTime())) time.textContent = timeFormat.format(moment);
  }
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Fetch the region's fragment and put it in; true when the region changed. */
export async function refreshRegion(region) {
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

