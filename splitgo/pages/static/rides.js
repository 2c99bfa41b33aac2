// Rides, better with JavaScript (every part works without it: forms post and redirect).
// - "Use my location" fills the pickup from the browser's Geolocation;
// - a driver shares their location: watchPosition, sent with the page's location form
//   (its CSRF token) at most every 5 s, and at least every 15 s while sharing;
// - an offer's countdown ring and words, from the seconds the server said were left;
// - the live region (a ride, the driver's offers and ride) is fetched again every few
//   seconds, and at once when the tab's WebSocket (live_socket.js) brings news of a ride,
//   and swapped for the server's fresh fragment when its version changed.

import { subscribe } from "./live_socket.js";

const POLL_MS = 3000;
const SEND_EVERY_MS = 5000;
const KEEP_ALIVE_MS = 15000;
const SHARING = "splitgo.sharing-location";
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

function localTimes(root) {
  for (const time of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(time.dateTime);
    if (!Number.isNaN(moment.getTime())) time.textContent = timeFormat.format(moment);
  }
}

function degrees(value) {
  return value.toFixed(6);
}

function say(element, text) {
  if (element) element.textContent = text;
}

function geolocationWords(error) {
  if (error && error.code === 1) return "Location is blocked for this site: type the coordinates instead.";
  return "Your location could not be found: type the coordinates instead.";
}

// ── the rider: "Use my location" ─────────────────────────────────────────────────────

function setUpLocate(button) {
  if (!("geolocation" in navigator)) return;
  const status = button.parentElement.querySelector("[data-locate-status]");
  const label = button.querySelector(".button-label");
  button.hidden = false;
  button.addEventListener("click", () => {
    button.classList.add("working");
    button.setAttribute("aria-disabled", "true");
    const idle = label.textContent;
    label.textContent = button.dataset.working;
    const done = () => {
      button.classList.remove("working");
      button.removeAttribute("aria-disabled");
      label.textContent = idle;
    };
    navigator.geolocation.getCurrentPosition(
      (position) => {
        done();
        document.getElementById("f-pickup-lat").value = degrees(position.coords.latitude);
        document.getElementById("f-pickup-lon").value = degrees(position.coords.longitude);
        say(status, "Pickup set to where you are.");
      },
      (error) => {
        done();
        say(status, geolocationWords(error));
      },
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 },
    );
  });
}

// ── the driver: sharing the location ─────────────────────────────────────────────────

function setUpSharing(button) {
  const form = document.querySelector("[data-location-form]");
  if (!("geolocation" in navigator) || !form) return;
  const status = button.parentElement.querySelector("[data-share-status]");
  const label = button.querySelector(".button-label");
  let watch = null;
  let latest = null;
  let sentAt = 0;
  let sending = false;
  let timer = null;

  async function send() {
    if (!latest || sending) return;
    const now = Date.now();
    if (now - sentAt < SEND_EVERY_MS) return;
    if (!latest.fresh && now - sentAt < KEEP_ALIVE_MS) return;
    sending = true;
    sentAt = now;
    latest.fresh = false;
    const data = new FormData(form);
    data.set("lat", degrees(latest.lat));
    data.set("lon", degrees(latest.lon));
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.status === 204) {
        say(status, `Sharing your location: last sent at ${clock.format(new Date())}.`);
      } else {
        const problem = await response.json().catch(() => ({}));
        say(status, problem.message || "Your location was not taken. Reload the page.");
        if (response.status === 403 || response.status === 401) stop();
      }
    } catch {
      say(status, "No connection: your location is sent again when it is back.");
    } finally {
      sending = false;
    }
  }

  function start() {
    if (watch !== null) return;
    localStorage.setItem(SHARING, "on");
    button.setAttribute("aria-pressed", "true");
    label.textContent = "Stop sharing";
    say(status, "Finding you…");
    watch = navigator.geolocation.watchPosition(
      (position) => {
        latest = { lat: position.coords.latitude, lon: position.coords.longitude, fresh: true };
        send();
      },
      (error) => {
        say(status, geolocationWords(error));
        if (error.code === 1) stop();
      },
      { enableHighAccuracy: true, maximumAge: 5000 },
    );
    timer = setInterval(send, 1000);
  }

  function stop() {
    localStorage.removeItem(SHARING);
    if (watch !== null) navigator.geolocation.clearWatch(watch);
    clearInterval(timer);
    watch = null;
    latest = null;
    button.setAttribute("aria-pressed", "false");
    label.textContent = "Share my location";
    say(status, "Not sharing your location.");
  }

  button.hidden = false;
  button.addEventListener("click", () => (watch === null ? start() : stop()));
  // sharing goes on across the page's own reloads (every form posts and comes back)
  if (localStorage.getItem(SHARING) === "on") {
    const granted = navigator.permissions?.query({ name: "geolocation" });
    if (granted) {
      granted.then((state) => state.state === "granted" && start(), () => {});
    }
  }
}

// ── offers: the countdown ────────────────────────────────────────────────────────────

function setUpCountdowns(root) {
  for (const countdown of root.querySelectorAll(".countdown[data-seconds]")) {
    const total = Math.max(1, Number(countdown.dataset.seconds));
    const deadline = performance.now() + total * 1000;
    const ring = countdown.querySelector(".ring-left");
    const text = countdown.querySelector("[data-countdown-text]");
    const tick = () => {
      if (!countdown.isConnected) return;
      const left = Math.max(0, (deadline - performance.now()) / 1000);
      ring?.setAttribute("stroke-dashoffset", String(100 - (100 * left) / total));
      const seconds = Math.ceil(left);
      text.textContent = seconds > 0 ? `${seconds} s left to answer.` : "This offer has expired.";
      countdown.classList.toggle("is-late", left <= 5);
      if (left > 0) setTimeout(tick, 250);
    };
    tick();
  }
}

// ── the live region ──────────────────────────────────────────────────────────────────

function busy(region) {
  if (region.querySelector("form[aria-busy=true]")) return true;
  const active = document.activeElement;
  return Boolean(active && region.contains(active) && active.matches("input, textarea, select"));
}

function follow(region) {
  const announce = document.querySelector("[data-announce]");
  let current = region;
  let timer = null;
  let running = false;

  const schedule = (ms) => {
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  };

  async function poll() {
    if (current.dataset.final === "true" || running) return;
    if (document.visibilityState !== "visible" || busy(current)) {
      schedule(POLL_MS);
      return;
    }
    running = true;
    try {
      const response = await fetch(current.dataset.live, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.redirected) return; // signed out meanwhile: the next page load says so
      if (response.ok) swap(await response.text());
    } catch {
      // offline for a moment: the next turn tries again
    } finally {
      running = false;
    }
    schedule(POLL_MS);
  }

  function swap(html) {
    const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(current.id);
    if (!fresh || fresh.dataset.version === current.dataset.version || busy(current)) return;
    const adopted = document.adoptNode(fresh);
    current.replaceWith(adopted);
    current = adopted;
    localTimes(current);
    setUpCountdowns(current);
    current.classList.add("is-fresh");
    const news = current.querySelector("[data-status-line], .ride-offer h3");
    say(announce, news?.textContent ?? "");
  }

  // a ride's news (an offer, the driver on the way, arrived...) comes at once on the tab's
  // WebSocket; the driver's moving dot only by asking every few seconds
  subscribe(
    (frame) => {
      if (frame?.type === "notification" && frame.notification?.category === "rides") schedule(0);
    },
    { reconnected: () => schedule(0) },
  );
  schedule(POLL_MS);
}

for (const button of document.querySelectorAll("[data-locate]")) setUpLocate(button);
for (const button of document.querySelectorAll("[data-share]")) setUpSharing(button);
setUpCountdowns(document);
for (const region of document.querySelectorAll(".ride-live-region[data-live]")) follow(region);
