// The expense form's preview (templates/expense_form.html): each person's share as you
// type, computed in integer minor units (BigInt) by the server's own rules
// (actors/splits/shares.py: largest remainder, earlier rows first on a tie), with where
// the left-over cents go ("1 cent goes to Ana") and what does not add up yet. Only the
// inputs of the chosen split mode are shown. Without JavaScript the form is the same and
// the server computes the shares when it is sent.
//
// Who takes part (as splitgo/pages/expenses.py reads the form): in the equal and
// adjustment splits, the ticked rows; in the exact, percent and shares splits, the
// ticked rows with a value typed.

const TYPED = /^[0-9][0-9., \u00a0\u202f']*$/;
const FULL_PERCENT_BP = 10000n;
const VALUE_OF = { equal: null, exact: "amount", percent: "percent", shares: "shares", adjustment: "amount" };
const AMOUNT_LABEL = { exact: "Amount", adjustment: "Adjustment (+ or −)" };
const HINTS = {
  equal: "Tick who shares it: each pays the same part.",
  exact: "Type what each person owes; together it is the amount. Leave someone empty to leave them out.",
  percent: "Type each person's percent; together they make 100 %. Leave someone empty to leave them out.",
  shares: "Type each person's shares: 2 pays twice what 1 pays. Leave someone empty to leave them out.",
  adjustment: "Tick who shares it, then add to or take from someone's equal part: +5 or −2,50.",
};

// An amount as typed ("12,50", "1.234,50", "12") in minor units, as money.parse_money
// reads it; null for what it would refuse.
function parseMoney(text, exponent, decimal) {
  const typed = text.trim().replace(/^\+/, "");
  if (!TYPED.test(typed)) return null;
  const compact = typed.replace(/[ \u00a0\u202f']/g, "");
  const marks = [];
  for (let i = 0; i < compact.length; i += 1) if (compact[i] === "." || compact[i] === ",") marks.push(i);
  let decimalAt = -1;
  if (marks.length) {
    const lastAt = marks[marks.length - 1];
    const last = compact[lastAt];
    const other = last === "." ? "," : ".";
    const digitsAfter = compact.length - lastAt - 1;
    const lone = compact.split(last).length - 1 === 1 && digitsAfter !== 3;
    if (compact.includes(other) || last === decimal || lone) decimalAt = lastAt;
  }
  const whole = (decimalAt >= 0 ? compact.slice(0, decimalAt) : compact).replace(/[.,]/g, "");
  const minor = decimalAt >= 0 ? compact.slice(decimalAt + 1) : "";
  if (!/^\d+$/.test(whole) || (minor && !/^\d+$/.test(minor)) || minor.length > exponent) return null;
  return BigInt(whole) * 10n ** BigInt(exponent) + BigInt(minor.padEnd(exponent, "0") || "0");
}

function parseSigned(text, exponent, decimal) {
  const typed = text.trim();
  const negative = typed.startsWith("-") || typed.startsWith("\u2212");
  const value = parseMoney(negative ? typed.slice(1) : typed, exponent, decimal);
  return value === null ? null : negative ? -value : value;
}

// a percent with at most two decimals, as basis points (100 % is 10000)
function parsePercent(text) {
  const typed = text.trim().replace(/%$/, "").trim().replace(",", ".");
  const found = /^(\d+)(?:\.(\d{1,2}))?$/.exec(typed);
  if (!found) return null;
  const points = BigInt(found[1]) * 100n + BigInt((found[2] ?? "").padEnd(2, "0"));
  return points > FULL_PERCENT_BP ? null : points;
}

function parseWeight(text) {
  const typed = text.trim();
  return /^\d+$/.test(typed) ? BigInt(typed) : null;
}

// shares.largest_remainder: floor parts, the left-over units one each to the largest
// remainders, earlier rows first on a tie; also which rows got one
function largestRemainder(amount, weights) {
  const total = weights.reduce((sum, weight) => sum + weight, 0n);
  const parts = weights.map((weight) => (amount * weight) / total);
  const remainders = weights.map((weight) => (amount * weight) % total);
  let left = amount - parts.reduce((sum, part) => sum + part, 0n);
  const order = weights.map((_, index) => index);
  order.sort((a, b) => (remainders[a] === remainders[b] ? a - b : remainders[b] > remainders[a] ? 1 : -1));
  const extra = [];
  for (const index of order) {
    if (left <= 0n) break;
    parts[index] += 1n;
    extra.push(index);
    left -= 1n;
  }
  return { parts, extra };
}

function people(found) {
  const names = found.map((name) => (name === "You" ? "you" : name));
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

function setUp(form) {
  const exponents = JSON.parse(form.dataset.exponents || "{}");
  const decimal = form.dataset.decimal || ".";
  const locale = form.dataset.locale || undefined;
  const rows = [...form.querySelectorAll("[data-row]")];
  const summary = form.querySelector("[data-split-summary]");
  const note = form.querySelector("[data-split-note]");
  const payersNote = form.querySelector("[data-payers-note]");
  const field = (name) => form.elements.namedItem(name);

  function currency() {
    const code = (field("currency")?.value || "").toUpperCase();
    return code in exponents ? code : "EUR";
  }

  function money(minor) {
    const code = currency();
    const exponent = exponents[code] ?? 2;
    const options = { style: "currency", currency: code, minimumFractionDigits: exponent, maximumFractionDigits: exponent };
    try {
      return new Intl.NumberFormat(locale, options).format(Number(minor) / 10 ** exponent);
    } catch {
      return `${Number(minor) / 10 ** exponent} ${code}`;
    }
  }

  function unit(count) {
    const exponent = exponents[currency()] ?? 2;
    if (exponent === 2) return count === 1n ? "cent" : "cents";
    return exponent === 0 ? currency() : "minor units";
  }

  function showMode(mode) {
    const hint = form.querySelector("[data-split-hint]");
    if (hint && HINTS[mode]) hint.textContent = HINTS[mode];
    for (const input of form.querySelectorAll(".split-rows [data-modes]")) {
      input.hidden = !input.dataset.modes.split(" ").includes(mode);
    }
    for (const label of form.querySelectorAll('.split-rows [data-modes="exact adjustment"] [data-label]')) {
      if (AMOUNT_LABEL[mode]) label.textContent = AMOUNT_LABEL[mode];
    }
  }

  // the shares of the rows taking part, or the reason there are none yet
  function compute(mode, amount, exponent) {
    const wanted = VALUE_OF[mode];
    const taking = [];
    for (const row of rows) {
      const box = row.querySelector('input[type="checkbox"]');
      const input = wanted ? row.querySelector(`input[name$=".${wanted}"]`) : null;
      const typed = input ? input.value.trim() : "";
      if (!box?.checked || (["exact", "percent", "shares"].includes(mode) && !typed)) continue;
      let value = null;
      if (mode === "exact") value = parseMoney(typed, exponent, decimal);
      else if (mode === "adjustment") value = typed ? parseSigned(typed, exponent, decimal) : 0n;
      else if (mode === "percent") value = parsePercent(typed);
      else if (mode === "shares") value = parseWeight(typed);
      else value = 1n;
      if (value === null) return { problem: `Check what is typed for ${row.dataset.name}.` };
      taking.push({ row, value });
    }
    if (!taking.length) return { problem: "Choose who shares it." };
    if (amount === null) return { problem: "Type the amount to see the shares." };
    const values = taking.map((line) => line.value);
    let parts;
    let extra = [];
    if (mode === "exact") {
      const total = values.reduce((sum, value) => sum + value, 0n);
      if (total !== amount) return { problem: `Shares add up to ${money(total)}; the expense is ${money(amount)}.` };
      parts = values;
    } else if (mode === "percent") {
      const total = values.reduce((sum, value) => sum + value, 0n);
      if (total !== FULL_PERCENT_BP) {
        const words = `${total / 100n}${total % 100n ? `.${String(total % 100n).padStart(2, "0")}` : ""}`;
        return { problem: `Percentages add up to ${words} %; make them 100 %.` };
      }
      ({ parts, extra } = largestRemainder(amount, values));
    } else if (mode === "shares") {
      if (!values.some((value) => value > 0n)) return { problem: "Give at least one person more than 0 shares." };
      ({ parts, extra } = largestRemainder(amount, values));
    } else if (mode === "adjustment") {
      const adjusted = values.reduce((sum, value) => sum + value, 0n);
      const rest = amount - adjusted;
      if (rest < 0n) return { problem: `Adjustments add up to ${money(adjusted)}, more than the expense (${money(amount)}).` };
      ({ parts, extra } = largestRemainder(rest, values.map(() => 1n)));
      parts = parts.map((part, index) => part + values[index]);
      const negative = parts.findIndex((part) => part < 0n);
      if (negative >= 0) return { problem: `The adjustment leaves ${taking[negative].row.dataset.name} a negative share.` };
    } else {
      ({ parts, extra } = largestRemainder(amount, values));
    }
    return { taking, parts, extra };
  }

  function update() {
    const mode = field("split.mode")?.value || "equal";
    showMode(mode);
    const exponent = exponents[currency()] ?? 2;
    const amount = parseMoney(field("amount")?.value || "", exponent, decimal);
    const found = compute(mode, amount, exponent);
    for (const row of rows) {
      const output = row.querySelector("[data-share]");
      output.textContent = "";
      output.dataset.minor = "";
    }
    if (found.problem) {
      note.textContent = found.problem;
      note.dataset.state = "problem";
      summary.textContent = found.problem;
    } else {
      const lines = [];
      found.taking.forEach(({ row }, index) => {
        const output = row.querySelector("[data-share]");
        output.textContent = money(found.parts[index]);
        output.dataset.minor = String(found.parts[index]);
        lines.push(`${row.dataset.name} ${money(found.parts[index])}`);
      });
      const count = BigInt(found.extra.length);
      const names = people(found.extra.map((index) => found.taking[index].row.dataset.name));
      note.textContent = count ? `${count} ${unit(count)} ${count === 1n ? "goes" : "go"} to ${names}.` : "";
      note.dataset.state = "ok";
      summary.textContent = lines.join(" · ");
    }
    updatePayers(amount, exponent);
  }

  function updatePayers(amount, exponent) {
    let total = 0n;
    let typed = false;
    for (const input of form.querySelectorAll('input[name^="paid_by."][name$=".amount"]')) {
      if (!input.value.trim()) continue;
      typed = true;
      const value = parseMoney(input.value, exponent, decimal);
      if (value === null) {
        payersNote.textContent = `Check the amount typed: ${input.labels?.[0]?.textContent ?? "a payer"}.`;
        return;
      }
      total += value;
    }
    if (!typed || amount === null) payersNote.textContent = "";
    else if (total === amount) payersNote.textContent = `Together they paid ${money(total)}.`;
    else payersNote.textContent = `Payers paid ${money(total)}; the expense is ${money(amount)}.`;
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  form.dataset.preview = "ready";
  update();
}

const expenseForm = document.querySelector("form[data-expense-form]");
if (expenseForm) setUp(expenseForm);
