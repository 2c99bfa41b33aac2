// The operator console's improvements; without JavaScript the console works the same
// (a Refresh link, confirmation pages).
// - the shards table refreshes every two seconds: the server renders the fragment
//   /console/shards, swapped in here; cells that changed are highlighted briefly (not
//   under prefers-reduced-motion); paused while the tab is hidden or a dialog is open;
// - Restart opens a <dialog> to confirm instead of the confirmation page;
// - Replay selected asks in a <dialog> naming how many ("Replay 3 dead letters?").

const EVERY_MS = 2000;
const HIGHLIGHT_MS = 1500;
const still = window.matchMedia("(prefers-reduced-motion: reduce)");

function openDialog() {
  return document.querySelector("dialog[open]") !== null;
}

function cells(root) {
  const found = new Map();
  for (const cell of root.querySelectorAll("[data-cell]")) {
    found.set(cell.dataset.cell, cell.textContent.replace(/\s+/g, " ").trim());
  }
  return found;
}

function liveShards(region) {
  const status = document.querySelector("[data-live-status]");
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) refresh.hidden = true;
  const say = (words) => {
    if (!status) return;
    status.hidden = false;
    status.textContent = words;
  };
  say("Updating every 2 seconds");
  let busy = false;

  async function update() {
    if (busy || document.hidden || openDialog()) return;
    busy = true;
    try {
      const response = await fetch(region.dataset.live, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
      });
      const text = await response.text();
      const fresh = new DOMParser().parseFromString(text, "text/html").getElementById("shards");
      if (!response.ok || fresh === null) {
        say(response.ok ? "Signed out: reload the page" : "Could not update; retrying");
        if (refresh) refresh.hidden = false;
        return;
      }
      swap(fresh);
      say("Updating every 2 seconds");
    } catch {
      say("Could not update; retrying");
      if (refresh) refresh.hidden = false;
    } finally {
      busy = false;
    }
  }

  function swap(fresh) {
    const before = cells(region);
    const focused = region.contains(document.activeElement)
      ? document.activeElement.getAttribute("href")
      : null;
    const adopted = document.adoptNode(fresh);
    if (!still.matches) {
      for (const cell of adopted.querySelectorAll("[data-cell]")) {
        const was = before.get(cell.dataset.cell);
        const now = cell.textContent.replace(/\s+/g, " ").trim();
        if (was !== undefined && was !== now && cell.dataset.cell !== "updated") {
          cell.classList.add("is-changed");
          setTimeout(() => cell.classList.remove("is-changed"), HIGHLIGHT_MS);
        }
      }
    }
    region.replaceWith(adopted);
    region = adopted;
    if (focused !== null) {
      for (const link of region.querySelectorAll("a[href]")) {
        if (link.getAttribute("href") === focused) {
          link.focus();
          break;
        }
      }
    }
  }

  setInterval(update, EVERY_MS);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) update();
  });
}

function restartDialog(dialog) {
  const form = dialog.querySelector("[data-restart-form]");
  const name = dialog.querySelector("[data-restart-name]");
  // the links are swapped in with the table: listen on the document
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[data-restart]") : null;
    if (link === null || event.button !== 0 || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    form.action = link.getAttribute("href");
    name.textContent = link.dataset.restart;
    dialog.showModal();
  });
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
}

function replayDialog(form, dialog) {
  const confirmed = form.querySelector("[data-confirmed]");
  const bulk = form.querySelector("[data-bulk]");
  const picks = () => [...form.querySelectorAll("input[data-pick]")];

  const all = form.querySelector("[data-pick-all]");
  if (all) {
    all.hidden = false;
    form.querySelector("[data-pick-words]")?.remove();
    const box = all.querySelector("input");
    box.addEventListener("change", () => {
      for (const pick of picks()) pick.checked = box.checked;
    });
    form.addEventListener("change", (event) => {
      if (event.target === box) return;
      const chosen = picks().filter((pick) => pick.checked).length;
      box.checked = chosen > 0 && chosen === picks().length;
      box.indeterminate = chosen > 0 && chosen < picks().length;
    });
  }

  // on the form itself, before app.js (on the document) marks the form as being sent
  form.addEventListener("submit", (event) => {
    if (event.submitter !== bulk || confirmed.value === "yes") return;
    const count = picks().filter((pick) => pick.checked).length;
    if (count === 0) return; // the server says what to do
    event.preventDefault();
    event.stopPropagation();
    const words = count === 1 ? "1 dead letter" : `${count} dead letters`;
    for (const place of dialog.querySelectorAll("[data-replay-count]")) place.textContent = words;
    dialog.returnValue = "";
    dialog.showModal();
  });

  dialog.querySelector("[data-confirm]").addEventListener("click", () => dialog.close("confirm"));
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close("cancel"));
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "confirm") return;
    confirmed.value = "yes";
    form.requestSubmit(bulk);
  });
  dialog.addEventListener("cancel", () => {
    dialog.returnValue = "cancel";
  });
}

const shards = document.getElementById("shards");
if (shards?.dataset.live) liveShards(shards);

const restart = document.getElementById("restart-dialog");
if (restart) restartDialog(restart);

const replayForm = document.querySelector("[data-replay-form]");
const replay = document.getElementById("replay-dialog");
if (replayForm && replay) replayDialog(replayForm, replay);
