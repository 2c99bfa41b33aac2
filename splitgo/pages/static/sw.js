// The service worker (served at /sw.js, after `const SHELL = [...]; const OFFLINE = "...";`
// which splitgo/pages/pwa.py puts in front of this file).
// - It keeps the shell: our CSS, JavaScript modules and icons (by their hashed names) and
//   the offline page. Never a signed-in page, never an API answer: nothing of a person.
// - A page is always fetched from the network; with no network, the offline page.
// - A push message (Web Push, decrypted by the browser) is shown as a notification; a
//   click focuses a tab already on its page, or opens one.

const CACHE = "splitgo-shell-" + SHELL.length + "-" + hash(SHELL.join("\n"));

function hash(text) {
  let h = 0;
  for (let i = 0; i < text.length; i += 1) h = (Math.imul(31, h) + text.charCodeAt(i)) | 0;
  return (h >>> 0).toString(36);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith("splitgo-shell-") && name !== CACHE)
            .map((name) => caches.delete(name)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // pages hold private data: the network only, and the offline page without one
    event.respondWith(
      fetch(request).catch(() =>
        caches.match(OFFLINE).then((page) => page || Response.error()),
      ),
    );
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    // the shell: hashed names never change, so the kept copy is the file
    event.respondWith(caches.match(request).then((kept) => kept || fetch(request)));
  }
  // anything else (the API, the WebSocket, live fragments) is left to the browser
});

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { body: event.data ? event.data.text() : "" };
  }
  const title = message.title || "splitgo";
  const icon = SHELL.find((url) => url.includes("/icon-192.")) || undefined;
  event.waitUntil(
    self.registration.showNotification(title, {
      body: message.body || "You have a new notification.",
      tag: message.tag || undefined,
      icon,
      data: { url: message.url || "/notifications" },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const wanted = new URL(event.notification.data?.url || "/notifications", self.location.origin);
  // only our own pages: a message cannot send anyone elsewhere
  const target = wanted.origin === self.location.origin ? wanted : new URL("/notifications", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => client.url === target.href);
      if (open) return open.focus();
      return self.clients.openWindow(target.href);
    }),
  );
});
