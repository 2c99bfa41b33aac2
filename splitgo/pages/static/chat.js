// Chat, live (loaded by the pages that show a conversation's panel, and by /messages).
// Without JavaScript the panel is whole: its form posts and the page comes back; a reload
// shows what arrived. With it:
//
// - Sending. The panel's form (templates/chat_form.html) goes by fetch with the header
//   `X-Requested-With: chat`: the server answers with the new message's row (201, and a
//   fresh idempotency key in `X-Form-Key` for the next one) or with the form again,
//   its refusal at the field (an empty or too long message, the rate limit). The button
//   shows it is working; the status line says "Sent." or what went wrong. Enter sends,
//   Shift+Enter starts a new line.
// - Arriving. A `chat_message` frame of the tab's WebSocket (live_socket.js) about an
//   open panel's conversation brings the rows after the last one shown
//   (/messages/{id}/rows?after=N, rendered by the server), put in order of `seq`; one
//   already shown (the answer to our own send) is never shown twice. Edits and deletions
//   (`chat_message_edited`, `chat_message_deleted`) bring that row again. The list is an
//   aria-live region, so a screen reader hears new messages politely.
// - Reading. When someone else's message arrives while the page is seen, it is marked
//   read (POST /messages/{id}/read), else as soon as the tab is shown again.
// - Typing. Typing in the form tells the others (POST /messages/{id}/typing, at most once
//   every 3 s); a `chat_typing` frame shows "Ann is typing…" for 4 s.
// - The list of conversations (/messages) is a live region brought again from
//   /messages/live whenever a chat frame arrives.

import { subscribe } from "./live_socket.js";
import { localiseTimes, refreshRegion } from "./live_regions.js";

const TYPING_SHOWN_MS = 4_000;
const TYPING_EVERY_MS = 3_000;
const FRAGMENT = { "X-Requested-With": "chat", Accept: "text/html" };

function csrfOf(root) {
  return root.querySelector('input[name="csrf_token"]')?.value ?? "";
}

async function post(url, root, fields = {}) {
  const body = new FormData();
  body.set("csrf_token", csrfOf(root));
  for (const [name, value] of Object.entries(fields)) body.set(name, value);
  return fetch(url, { method: "POST", body, credentials: "same-origin", headers: FRAGMENT });
}

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

class Panel {
  constructor(root) {
    this.root = root;
    this.id = root.dataset.chat;
    this.me = root.dataset.chatMe;
    this.here = root.dataset.chatHere;
    this.live = root.hasAttribute("data-chat-live");
    this.list = root.querySelector("[data-chat-messages]");
    this.empty = root.querySelector("[data-chat-empty]");
    this.typingLine = root.querySelector("[data-chat-typing]");
    this.typers = new Map();
    this.lastTyping = 0;
    this.unread = null;
    this.sending = false;
    this.fetching = null;
    root.addEventListener("submit", (event) => this.onSubmit(event));
    root.addEventListener("keydown", (event) => this.onKey(event));
    root.addEventListener("input", (event) => this.onInput(event));
    this.showKeys();
    root.dataset.chatReady = "true";
  }

  get form() {
    return this.root.querySelector("[data-chat-form]");
  }

  showKeys() {
    for (const hint of this.root.querySelectorAll("[data-chat-keys]")) hint.hidden = false;
  }

  lastSeq() {
    let last = 0;
    for (const row of this.list.querySelectorAll("[data-seq]")) {
      last = Math.max(last, Number(row.dataset.seq));
    }
    return last;
  }

  // rows from the server, each put in order of seq; `replace` swaps a row already shown
  place(html, { replace = false, arrived = true } = {}) {
    const rows = [...fragment(html).querySelectorAll("li[data-seq]")];
    for (const row of rows) {
      const seq = Number(row.dataset.seq);
      const shown = this.list.querySelector(`li[data-seq="${seq}"]`);
      if (shown) {
        if (replace) shown.replaceWith(row);
        continue;
      }
      const after = [...this.list.children].find((child) => Number(child.dataset.seq) > seq);
      if (arrived) row.classList.add("arrived");
      this.list.insertBefore(row, after ?? null);
    }
    localiseTimes(this.list);
    if (this.empty) this.empty.hidden = this.list.children.length > 0;
    return rows;
  }

  rowsUrl(query) {
    return `/messages/${this.id}/rows?${query}&here=${encodeURIComponent(this.here)}`;
  }

  async bringNew() {
    // one fetch at a time; frames meanwhile ask again after it
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    this.fetching = (async () => {
      do {
        this.again = false;
        const response = await fetch(this.rowsUrl(`after=${this.lastSeq()}`), {
          credentials: "same-origin",
          headers: FRAGMENT,
        });
        if (!response.ok) break;
        const rows = this.place(await response.text());
        const theirs = rows.filter((row) => row.dataset.author !== this.me);
        if (theirs.length) this.noteUnread(theirs[theirs.length - 1].dataset.messageId);
      } while (this.again);
    })().finally(() => {
      this.fetching = null;
    });
    return this.fetching;
  }

  async bringOne(seq) {
    if (!this.list.querySelector(`li[data-seq="${seq}"]`)) return;
    const response = await fetch(this.rowsUrl(`seq=${seq}`), {
      credentials: "same-origin",
      headers: FRAGMENT,
    });
    if (response.ok) this.place(await response.text(), { replace: true, arrived: false });
  }

  noteUnread(messageId) {
    this.unread = messageId;
    if (document.visibilityState === "visible") this.markRead();
  }

  async markRead() {
    const messageId = this.unread;
    if (!messageId) return;
    this.unread = null;
    try {
      await post(`/messages/${this.id}/read`, this.root, { message_id: messageId });
    } catch {
      this.unread = this.unread ?? messageId; // offline: the next arrival marks it
    }
  }

  onFrame(frame) {
    if (frame.conversation_id !== this.id) return;
    if (frame.type === "chat_message") {
      this.typers.delete(frame.author_id);
      this.showTyping();
      if (this.live && !this.list.querySelector(`li[data-seq="${frame.seq}"]`)) this.bringNew();
    } else if (frame.type === "chat_message_edited" || frame.type === "chat_message_deleted") {
      this.bringOne(frame.seq);
    } else if (frame.type === "chat_typing" && frame.user_id !== this.me) {
      this.typers.set(frame.user_id, { name: frame.name || "Someone", until: Date.now() + TYPING_SHOWN_MS });
      this.showTyping();
      setTimeout(() => this.showTyping(), TYPING_SHOWN_MS + 50);
    }
  }

  showTyping() {
    const now = Date.now();
    for (const [id, typer] of this.typers) if (typer.until <= now) this.typers.delete(id);
    const names = [...this.typers.values()].map((typer) => typer.name);
    let words = "";
    if (names.length === 1) words = `${names[0]} is typing…`;
    else if (names.length === 2) words = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) words = "Several people are typing…";
    if (this.typingLine && this.typingLine.textContent !== words) this.typingLine.textContent = words;
  }

  onKey(event) {
    const area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.closest("[data-chat-form]")) return;
    if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    if (event.isComposing) return;
    event.preventDefault();
    area.form.requestSubmit();
  }

  onInput(event) {
    const area = event.target;
    if (!(area instanceof HTMLTextAreaElement) || !area.value.trim()) return;
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    post(`/messages/${this.id}/typing`, this.root).catch(() => {});
  }

  status(words, error = false) {
    const line = this.root.querySelector("[data-chat-status]");
    if (!line) return;
    line.textContent = words;
    line.classList.toggle("is-error", error);
  }

  working(on) {
    const form = this.form;
    const button = form?.querySelector("button[type=submit]");
    if (!form || !button) return;
    const label = button.querySelector(".button-label");
    if (on) {
      form.setAttribute("aria-busy", "true");
      button.classList.add("working");
      button.setAttribute("aria-disabled", "true");
      if (label && button.dataset.working) {
        button.dataset.label = label.textContent;
        label.textContent = button.dataset.working;
      }
    } else {
      form.removeAttribute("aria-busy");
      button.classList.remove("working");
      button.removeAttribute("aria-disabled");
      if (label && button.dataset.label) label.textContent = button.dataset.label;
    }
  }

  clearRefusal(form) {
    for (const found of form.querySelectorAll("#chat-text-error, #chat-refused")) found.remove();
    form.querySelector(".field.has-error")?.classList.remove("has-error");
    const area = form.querySelector("textarea");
    area?.removeAttribute("aria-invalid");
    area?.setAttribute("aria-describedby", "chat-text-hint");
  }

  async onSubmit(event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("[data-chat-form]")) return;
    event.preventDefault();
    event.stopPropagation(); // the page's own "working" handler (app.js) is ours here
    if (this.sending) return;
    this.sending = true;
    this.working(true);
    this.status("Sending…");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: FRAGMENT,
      });
      const html = await response.text();
      if (response.status === 201) {
        this.place(html, { arrived: false });
        const key = response.headers.get("X-Form-Key");
        const keyInput = form.querySelector('input[name="idempotency_key"]');
        if (key && keyInput) keyInput.value = key;
        form.querySelector("textarea").value = "";
        const file = form.querySelector('input[type="file"]');
        if (file) file.value = "";
        this.clearRefusal(form);
        this.status("Sent.");
        this.lastTyping = 0;
        return;
      }
      const answered = fragment(html).querySelector("[data-chat-form]");
      if (!answered) {
        this.status("Not sent. Reload the page and try again.", true);
        return;
      }
      form.replaceWith(answered);
      this.showKeys();
      this.status("Not sent.", true);
      answered.querySelector("textarea")?.focus();
    } catch {
      this.status("Not sent: check your connection, then send again.", true);
    } finally {
      this.sending = false;
      this.working(false);
    }
  }
}

const panels = [...document.querySelectorAll("[data-chat]")].map((root) => new Panel(root));
const conversations = document.querySelector("[data-chat-list]");
let listPending = null;

function refreshList() {
  if (!conversations || listPending !== null) return;
  listPending = setTimeout(async () => {
    listPending = null;
    await refreshRegion(conversations);
    conversations.dataset.liveRefreshed = String(
      Number(conversations.dataset.liveRefreshed ?? "0") + 1,
    );
  }, 150);
}

if ((panels.length || conversations) && "WebSocket" in window) {
  subscribe(
    (frame) => {
      if (typeof frame?.type !== "string" || !frame.type.startsWith("chat_")) return;
      for (const panel of panels) panel.onFrame(frame);
      if (frame.type !== "chat_typing") refreshList();
    },
    {
      connected: () => {
        for (const panel of panels) panel.root.dataset.live = "connected";
      },
      reconnected: () => {
        for (const panel of panels) if (panel.live) panel.bringNew();
        refreshList();
      },
      closed: () => {
        for (const panel of panels) panel.root.dataset.live = "closed";
      },
    },
  );
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") for (const panel of panels) panel.markRead();
});
