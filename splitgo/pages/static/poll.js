// Follows what is still pending on a page — a wallet settlement, a top-up — without a
// reload. An element with `data-poll="<url>"` is asked for again from that URL (a fragment
// the server renders) until the answer no longer has `data-poll`; then it takes the
// answer's place, and the regions named in the answer's `data-refresh` (element ids) are
// taken from this page rendered afresh. Without JavaScript the page says to reload.

const FIRST_WAIT_MS = 700;
const LONGEST_WAIT_MS = 5000;
const GIVE_UP_MS = 10 * 60 * 1000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function fragment(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) return null;
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  return parsed;
}

async function refresh(ids) {
  const names = (ids || "").split(/\s+/).filter(Boolean);
  if (!names.length) return;
  const page = await fragment(window.location.href);
  if (!page) return;
  for (const name of names) {
    const fresh = page.getElementById(name);
    const shown = document.getElementById(name);
    if (fresh && shown) shown.replaceWith(document.adoptNode(fresh));
    else if (shown && !fresh) shown.remove();
  }
}

async function follow(region) {
  const started = Date.now();
  let wait = FIRST_WAIT_MS;
  let current = region;
  while (Date.now() - started < GIVE_UP_MS) {
    await sleep(wait);
    wait = Math.min(wait * 1.5, LONGEST_WAIT_MS);
    let answer;
    try {
      answer = await fragment(current.dataset.poll);
    } catch {
      continue; // offline for a moment: ask again later
    }
    const next = answer?.body.firstElementChild;
    if (!next) continue;
    if (next.dataset.poll) continue; // still pending: nothing changed to show
    const adopted = document.adoptNode(next);
    adopted.classList.add("arrived");
    current.replaceWith(adopted);
    current = adopted;
    await refresh(adopted.dataset.refresh);
    return;
  }
}

for (const region of document.querySelectorAll("[data-poll]")) follow(region);
