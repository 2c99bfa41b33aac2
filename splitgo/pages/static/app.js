// Every page's small improvements; without JavaScript every page works the same.
// - a form being sent shows its button as working and ignores a second submit
//   (its idempotency key would make it harmless; this spares the wait);
// - a form answered with its problems brings the list of them into focus;
// - times (<time datetime>) are shown in the browser's own zone and language.

const sending = new WeakSet();

function markWorking(form, button) {
  sending.add(form);
  form.setAttribute("aria-busy", "true");
  if (!button) return;
  button.classList.add("working");
  button.setAttribute("aria-disabled", "true");
  const label = button.querySelector(".button-label");
  if (label && button.dataset.working) {
    button.dataset.label = label.textContent;
    label.textContent = button.dataset.working;
  }
}

function reset(form) {
  sending.delete(form);
  form.removeAttribute("aria-busy");
  for (const button of form.querySelectorAll("button.working")) {
    button.classList.remove("working");
    button.removeAttribute("aria-disabled");
    const label = button.querySelector(".button-label");
    if (label && button.dataset.label) label.textContent = button.dataset.label;
  }
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (sending.has(form)) {
    event.preventDefault();
    return;
  }
  const button = event.submitter ?? form.querySelector("button:not([type=button])");
  markWorking(form, button);
});

// coming back with the Back button shows the page as it was left: make it usable again
window.addEventListener("pageshow", (event) => {
  if (event.persisted) for (const form of document.forms) reset(form);
});

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
for (const time of document.querySelectorAll("time[datetime]")) {
  const moment = new Date(time.dateTime);
  if (!Number.isNaN(moment.getTime())) time.textContent = timeFormat.format(moment);
}

document.querySelector(".error-summary")?.focus();
