// Moves an import's progress bar without a reload: asks the job's status URL (the
// element's `data-import-status`) every second and updates the <progress> and its count;
// once the job is no longer running, loads the page again to show the outcome.

const WAIT_MS = 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function follow(box) {
  const bar = box.querySelector("progress");
  const count = box.querySelector("[data-import-count]");
  for (;;) {
    await sleep(WAIT_MS);
    let status;
    try {
      const response = await fetch(box.dataset.importStatus, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) continue;
      status = await response.json();
    } catch {
      continue; // offline for a moment: ask again
    }
    bar.max = Math.max(status.total, 1);
    bar.value = status.done;
    bar.textContent = `${status.done} of ${status.total}`;
    if (count) count.textContent = `${status.done} of ${status.total}`;
    if (status.state !== "running") {
      window.location.reload();
      return;
    }
  }
}

for (const box of document.querySelectorAll("[data-import-status]")) follow(box);
