// Passkeys (WebAuthn) in the web app. Without JavaScript, or in a browser without
// passkeys, the buttons stay hidden and the page says why; the password always works.
// - /account/passkeys, "Add a passkey": options from POST /account/passkeys/options,
//   navigator.credentials.create(), then the credential and its name to POST
//   /account/passkeys;
// - the sign-in page, "Sign in with a passkey": options from POST
//   /sign-in/passkey/options, navigator.credentials.get(), then the assertion to POST
//   /sign-in/passkey, which signs this browser in.
// Each answers JSON: the options, `{redirect}` on success, `{error}` in words otherwise.
// Binary fields travel as base64url text (WebAuthn's JSON form), converted here.

const supported =
  window.isSecureContext && "PublicKeyCredential" in window && typeof navigator.credentials?.create === "function";

function toBytes(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

function toText(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function withIds(list) {
  return (list || []).map((item) => ({ ...item, id: toBytes(item.id) }));
}

function creationOptions(json) {
  return {
    ...json,
    challenge: toBytes(json.challenge),
    user: { ...json.user, id: toBytes(json.user.id) },
    excludeCredentials: withIds(json.excludeCredentials),
  };
}

function requestOptions(json) {
  return { ...json, challenge: toBytes(json.challenge), allowCredentials: withIds(json.allowCredentials) };
}

// the credential as WebAuthn's JSON (what PublicKeyCredential.toJSON() gives, where it exists)
function credentialJson(credential) {
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: toText(credential.rawId),
    type: credential.type,
    response: { clientDataJSON: toText(response.clientDataJSON) },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
  if (credential.authenticatorAttachment) json.authenticatorAttachment = credential.authenticatorAttachment;
  if (response.attestationObject) {
    json.response.attestationObject = toText(response.attestationObject);
    json.response.transports = typeof response.getTransports === "function" ? response.getTransports() : [];
  } else {
    json.response.authenticatorData = toText(response.authenticatorData);
    json.response.signature = toText(response.signature);
    json.response.userHandle = response.userHandle ? toText(response.userHandle) : null;
  }
  return json;
}

async function post(url, fields) {
  const answer = await fetch(url, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { Accept: "application/json" },
    credentials: "same-origin",
  });
  let data = {};
  try {
    data = await answer.json();
  } catch {
    // not JSON: an error page (an expired form, the server away)
  }
  if (!answer.ok) throw new Error(data.error || "That did not work. Reload the page and try again.");
  return data;
}

// what the browser's refusal means, in words
function explained(error) {
  if (error?.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again when you are ready.";
  if (error?.name === "InvalidStateError") return "This device already holds a passkey for your account.";
  if (error?.name === "SecurityError") return "Passkeys do not work at this address of the site.";
  return error?.message || "That did not work. Try again.";
}

function ceremony({ form, box, status, alert, run }) {
  if (!form) return;
  if (!supported) {
    status.textContent = "This browser cannot use passkeys. Your password works as always.";
    return;
  }
  box.hidden = false;
  status.textContent = "";
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    alert.hidden = true;
    alert.textContent = "";
    const token = form.elements.csrf_token.value;
    working(form, button, true);
    run(form, token)
      .then((done) => {
        status.textContent = "Done. One moment…";
        window.location.assign(done.redirect);
      })
      .catch((error) => {
        status.textContent = "";
        alert.textContent = explained(error);
        alert.hidden = false;
        working(form, button, false);
      });
  });
}

function working(form, button, on) {
  form.toggleAttribute("aria-busy", on);
  if (!button) return;
  button.classList.toggle("working", on);
  button.toggleAttribute("aria-disabled", on);
  const label = button.querySelector(".button-label");
  if (!label) return;
  if (on && button.dataset.working) {
    button.dataset.label ??= label.textContent;
    label.textContent = button.dataset.working;
  } else if (!on && button.dataset.label) {
    label.textContent = button.dataset.label;
  }
}

ceremony({
  form: document.querySelector("#passkey-add-form"),
  box: document.querySelector("#passkey-add-box"),
  status: document.querySelector("#passkey-add-status"),
  alert: document.querySelector("#passkey-add-error"),
  async run(form, token) {
    const input = form.elements.name;
    const name = input.value.trim();
    input.toggleAttribute("aria-invalid", !name);
    if (!name) {
      input.focus();
      throw new Error("Give the passkey a name, such as Phone.");
    }
    const options = await post("/account/passkeys/options", { csrf_token: token });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    return post("/account/passkeys", {
      csrf_token: token,
      name,
      credential: JSON.stringify(credentialJson(credential)),
    });
  },
});

ceremony({
  form: document.querySelector("#passkey-sign-in-form"),
  box: document.querySelector("#passkey-sign-in-box"),
  status: document.querySelector("#passkey-sign-in-status"),
  alert: document.querySelector("#passkey-sign-in-error"),
  async run(form, token) {
    const options = await post("/sign-in/passkey/options", { csrf_token: token });
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    return post("/sign-in/passkey", {
      csrf_token: token,
      next: form.elements.next.value,
      credential: JSON.stringify(credentialJson(credential)),
    });
  },
});
