// Password hints as you type (sign-up, reset): the rules the server applies, checked
// roughly here so nobody has to guess; the server's answer stays the one that counts.

const MIN_LENGTH = 10;
const COMMON = [
  "password", "passwort", "qwerty", "letmein", "welcome", "iloveyou", "admin", "monkey",
  "dragon", "football", "baseball", "sunshine", "princess", "splitgo", "123456", "abc123",
];

function personalWords(form) {
  const words = [];
  for (const name of ["name", "email"]) {
    const value = (form.elements.namedItem(name)?.value ?? "").toLowerCase();
    for (const word of value.split(/[\s@._+-]+/)) if (word.length >= 3) words.push(word);
  }
  return words;
}

function hints(password, personal) {
  const lower = password.toLowerCase();
  const problems = [];
  if (password.length < MIN_LENGTH) {
    problems.push(`Use at least ${MIN_LENGTH} characters (${password.length} so far).`);
  }
  if (personal.some((word) => lower.includes(word))) {
    problems.push("Leave out your name and email address.");
  }
  if (COMMON.some((word) => lower.includes(word))) {
    problems.push("Leave out common passwords and words like “password”.");
  }
  if (/(.)\1{2,}/.test(password) || /(?:0123|1234|2345|3456|4567|5678|6789|abcd|qwer|asdf)/.test(lower)) {
    problems.push("Avoid repeated characters and sequences such as 1234 or abcd.");
  }
  const words = password.trim().split(/\s+/).filter((word) => word.length >= 3).length;
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((kind) => kind.test(password)).length;
  if (problems.length === 0 && words < 3 && kinds < 3 && password.length < 16) {
    problems.push("Make it harder to guess: add a word or two, or mix in digits and signs.");
  }
  return problems;
}

function show(box, problems) {
  box.hidden = false;
  box.replaceChildren();
  const line = document.createElement("p");
  line.className = problems.length ? "check-bad" : "check-good";
  line.textContent = problems.length ? problems[0] : "Looks strong.";
  box.append(line);
}

for (const form of document.querySelectorAll("form[data-password-rules]")) {
  const input = form.elements.namedItem("password");
  const box = document.getElementById("password-check");
  if (!(input instanceof HTMLInputElement) || !box) continue;
  let timer = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    if (!input.value) {
      box.hidden = true;
      return;
    }
    timer = setTimeout(() => show(box, hints(input.value, personalWords(form))), 300);
  });
}
