// The push devices page (/account/push): "Turn on in this browser" asks for permission,
// subscribes this browser's push service with the node's VAPID key, puts the subscription
// in the form's hidden inputs and sends the form (the page's POST, as without this file
// there is nothing to send). It also marks which listed device is this browser.

const form = document.querySelector("#push-form");
const status = document.querySelector("#push-status");
const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function keyBytes(text) {
  const base64 = (text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function say(text) {
  if (status) status.textContent = text;
}

function ready(button) {
  // the button back to itself, so a person can try again
  form.removeAttribute("aria-busy");
  if (!button) return;
  button.classList.remove("working");
  button.removeAttribute("aria-disabled");
  const label = button.querySelector(".button-label");
  if (label && button.dataset.label) label.textContent = button.dataset.label;
}

async function subscribe() {
  if ((await Notification.requestPermission()) !== "granted") {
    throw new Error("Notifications are blocked for this site: allow them in the browser's settings.");
  }
  const answer = await fetch("/api/v1/push/vapid-public-key", { headers: { Accept: "application/json" } });
  if (!answer.ok) throw new Error("This server sends no push notifications.");
  const { public_key: key } = await answer.json();
  const registration = await navigator.serviceWorker.ready;
  const subscription =
    (await registration.pushManager.getSubscription()) ||
    (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) }));
  return subscription.toJSON();
}

if (form) {
  if (!supported) {
    form.hidden = true;
    say("This browser cannot get push notifications. You still see everything under Notifications.");
  }
  form.addEventListener("submit", (event) => {
    if (form.elements.endpoint.value) return; // filled: let it go
    event.preventDefault();
    const button = event.submitter;
    say("Asking your browser…");
    subscribe()
      .then((subscription) => {
        form.elements.endpoint.value = subscription.endpoint;
        form.elements["keys.p256dh"].value = subscription.keys.p256dh;
        form.elements["keys.auth"].value = subscription.keys.auth;
        form.submit();
      })
      .catch((error) => {
        say(error.message || "Push notifications could not be turned on.");
        ready(button);
      });
  });
}

if (supported) {
  navigator.serviceWorker.ready
    .then((registration) => registration.pushManager.getSubscription())
    .then((subscription) => {
      if (!subscription) return;
      for (const item of document.querySelectorAll("[data-endpoint]")) {
        if (item.dataset.endpoint === subscription.endpoint) item.querySelector(".this-browser")?.removeAttribute("hidden");
      }
    })
    .catch(() => {});
}
