// One WebSocket per tab to the node's GET /live (the browser's twin of /api/v1/ws, signed
// in by the session cookie), shared by every module that imports this one (a module runs
// once per page, however many import it):
//
//     import { subscribe } from "./live_socket.js";
//     subscribe((frame) => { ... }, { reconnected, connected, closed });
//
// Each JSON frame goes to every subscriber (a `notification` frame: {type, notification:
// {id, category, kind, title, body, data, created_at, read}}). The socket opens with the
// first subscriber; a lost one comes back, waiting longer each time, and then tells each
// subscriber's `reconnected`, since frames may have been missed meanwhile; `connected` hears
// every greeting (a subscriber that comes after the greeting, as a module loaded later
// does, hears it at once), `closed` every loss. Each frame is also dispatched on `document` as a
// "splitgo:live" CustomEvent (the frame in `detail`).

const WAITS_MS = [1_000, 2_000, 5_000, 15_000, 30_000];
const listeners = new Set();
let socket = null;
let failures = 0;
let connectedBefore = false;
let greeted = false;

function deliver(frame) {
  document.dispatchEvent(new CustomEvent("splitgo:live", { detail: frame }));
  for (const listener of listeners) {
    try {
      listener.onFrame(frame);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${window.location.host}/live`);
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame?.type === "hello") {
      failures = 0;
      greeted = true;
      for (const listener of listeners) listener.connected?.();
      if (connectedBefore) for (const listener of listeners) listener.reconnected?.();
      connectedBefore = true;
      return;
    }
    deliver(frame);
  });
  socket.addEventListener("close", () => {
    socket = null;
    greeted = false;
    for (const listener of listeners) listener.closed?.();
    const wait = WAITS_MS[Math.min(failures, WAITS_MS.length - 1)];
    failures += 1;
    setTimeout(connect, wait);
  });
}

export function subscribe(onFrame, { reconnected, connected, closed } = {}) {
  listeners.add({ onFrame, reconnected, connected, closed });
  if (socket === null && "WebSocket" in window) connect();
  else if (greeted) connected?.();
}

export function available() {
  return "WebSocket" in window;
}
