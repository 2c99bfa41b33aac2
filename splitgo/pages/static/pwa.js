// Installable: registers the service worker (static/sw.js, served at /sw.js), which keeps
// the shell for an offline page and shows Web Push notifications. A browser without
// service workers (or with them switched off) simply goes without.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((error) => {
    console.warn("splitgo: no offline page in this browser:", error.message);
  });
}
