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
//
// Issue 17: an itemized bill is previewed by actors/splits/items.py's rules (tax and tip
// spread over the items in proportion or equally, ties to the larger item first, then
// each item shared equally by its ticked people, or by everyone); "More item rows" adds
// a row in place instead of loading the form again. The rate and the amount in the
// group's currency show only for another currency, the end of a series only when it
// repeats. The server's answer stays the authority.

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

// items.py's _tie_key for an equally shared item: larger amount first, then by
// description, then by its people's ids (Python's tuple order)
function compareItems(a, b) {
  if (a.amount !== b.amount) return a.amount > b.amount ? -1 : 1;
  if (a.description !== b.description) return a.description < b.description ? -1 : 1;
  for (let i = 0; i < Math.min(a.people.length, b.people.length); i += 1) {
    if (a.people[i] !== b.people[i]) return a.people[i] < b.people[i] ? -1 : 1;
  }
  return a.people.length - b.people.length;
}

// the bill priced as items.split_items prices it, or the reason it cannot be yet
function priceBill(items, extra, spread) {
  const order = items.map((_, index) => index);
  order.sort((a, b) => compareItems(items[a], items[b]) || a - b);
  const weights = order.map((index) => (spread === "equal" ? 1n : items[index].amount));
  const { parts } = largestRemainder(extra, weights);
  const extras = new Array(items.length).fill(0n);
  order.forEach((index, position) => {
    extras[index] = parts[position];
  });
  const totals = new Map();
  const priced = items.map((item, index) => {
    const adjusted = item.amount + extras[index];
    const { parts: shares } = largestRemainder(adjusted, item.people.map(() => 1n));
    item.people.forEach((user, at) => totals.set(user, (totals.get(user) ?? 0n) + shares[at]));
    return { ...item, extra: extras[index], adjusted };
  });
  return { priced, totals };
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
  const groupCurrency = form.dataset.groupCurrency || "";
  const conversion = form.querySelector("[data-conversion]");
  const splitRows = form.querySelector(".split-rows");
  const itemsBox = form.querySelector("[data-items]");
  const ends = form.querySelector("[data-ends]");
  const members = rows.map((row) => ({
    id: row.querySelector('input[type="checkbox"]')?.value ?? "",
    name: row.dataset.name || "Someone",
  }));
  const nameOf = new Map(members.map((member) => [member.id, member.name]));
  let wasForeign = null;

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
    if (splitRows) splitRows.hidden = mode === "items";
    if (itemsBox) itemsBox.hidden = mode !== "items";
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

  // the rate and group amount only for another currency; the end only for a series
  function showFolds() {
    const code = (field("currency")?.value || "").toUpperCase();
    const foreign = Boolean(groupCurrency) && code !== groupCurrency;
    if (conversion) {
      conversion.hidden = !foreign;
      if (foreign && wasForeign === false) conversion.open = true;
      const label = form.querySelector('label[for="f-rate"]');
      if (label?.firstChild && foreign) label.firstChild.nodeValue = `Rate: 1 ${code} = ? ${groupCurrency} `;
    }
    wasForeign = foreign;
    const repeats = field("recurrence")?.value || "";
    if (ends) ends.hidden = !repeats || repeats === "none";
  }

  function say(problem) {
    note.textContent = problem;
    note.dataset.state = "problem";
    summary.textContent = problem;
  }

  function updateItems(amount, exponent) {
    const itemsNote = form.querySelector("[data-items-note]");
    const list = form.querySelector("[data-items-shares]");
    const found = [];
    let problem = "";
    for (const row of form.querySelectorAll("[data-item-row]")) {
      const output = row.querySelector("[data-item-total]");
      output.textContent = "";
      output.dataset.minor = "";
      const description = row.querySelector('input[name$=".description"]')?.value.trim() ?? "";
      const typed = row.querySelector('input[name$=".amount"]')?.value.trim() ?? "";
      if (!description && !typed) continue;
      const value = parseMoney(typed, exponent, decimal);
      if (value === null || value <= 0n) {
        problem ||= `Check the amount of ${description || `item ${Number(row.dataset.index) + 1}`}.`;
        continue;
      }
      const ticked = [...row.querySelectorAll('.item-people input[type="checkbox"]:checked')].map((box) => box.dataset.user);
      found.push({ row, description, amount: value, people: ticked.length ? ticked : members.map((m) => m.id) });
    }
    const extras = [];
    for (const name of ["tax", "tip"]) {
      const typed = (field(name)?.value || "").trim();
      const value = typed ? parseMoney(typed, exponent, decimal) : 0n;
      if (value === null) problem ||= `Check the ${name}.`;
      extras.push(value ?? 0n);
    }
    list.replaceChildren();
    if (!problem && !found.length) problem = "Add an item: what it is and its amount.";
    if (problem) {
      itemsNote.textContent = problem;
      itemsNote.dataset.state = "problem";
      say(problem);
      return null;
    }
    const { priced, totals } = priceBill(found, extras[0] + extras[1], field("spread")?.value || "proportional");
    for (const item of priced) {
      const output = item.row.querySelector("[data-item-total]");
      output.textContent = item.extra ? `${money(item.adjusted)} with tax and tip` : money(item.adjusted);
      output.dataset.minor = String(item.adjusted);
    }
    const lines = [];
    for (const [user, share] of totals) {
      const line = document.createElement("li");
      line.dataset.user = user;
      line.dataset.minor = String(share);
      line.textContent = `${nameOf.get(user) ?? "Someone"} ${money(share)}`;
      list.append(line);
      lines.push(line.textContent);
    }
    const total = priced.reduce((sum, item) => sum + item.adjusted, 0n);
    if (amount !== null && amount !== total) {
      itemsNote.textContent = `The items, tax and tip make ${money(total)}; the amount is ${money(amount)}.`;
      itemsNote.dataset.state = "problem";
      say(itemsNote.textContent);
    } else {
      itemsNote.textContent = `The items, tax and tip make ${money(total)}.`;
      itemsNote.dataset.state = "ok";
      note.textContent = "";
      summary.textContent = lines.join(" · ");
    }
    return total;
  }

  // "More item rows": a blank row like the last, numbered on, in place
  function addItemRow(event) {
    const all = [...form.querySelectorAll("[data-item-row]")];
    const last = all[all.length - 1];
    const limit = Number(itemsBox?.dataset.max || "200");
    if (!last || all.length >= limit) return;
    event.preventDefault();
    const from = Number(last.dataset.index);
    const to = from + 1;
    const row = last.cloneNode(true);
    row.dataset.index = String(to);
    row.classList.remove("has-error");
    for (const error of row.querySelectorAll(".error")) error.remove();
    for (const element of row.querySelectorAll("*")) {
      element.classList.remove("has-error");
      element.removeAttribute("aria-invalid");
      for (const name of ["name", "id", "for"]) {
        const value = element.getAttribute(name);
        if (value) {
          element.setAttribute(name, value.replace(`items.${from}.`, `items.${to}.`).replace(`f-items-${from}-`, `f-items-${to}-`));
        }
      }
      const described = element.getAttribute("aria-describedby");
      if (described) {
        const kept = described.split(" ").filter((id) => !id.endsWith("-error"));
        if (kept.length) element.setAttribute("aria-describedby", kept.join(" "));
        else element.removeAttribute("aria-describedby");
      }
      if (element.tagName === "INPUT") {
        if (element.type === "checkbox") element.checked = false;
        else element.value = "";
      }
      if (element.tagName === "OUTPUT") {
        element.textContent = "";
        element.dataset.minor = "";
      }
    }
    const labels = row.querySelectorAll(".split-input label");
    const title = labels[0]?.querySelector("[data-label]");
    if (title) title.textContent = `Item ${to + 1}`;
    const who = labels[1]?.querySelector(".visually-hidden");
    if (who) who.textContent = `Item ${to + 1}: `;
    const legend = row.querySelector("legend");
    if (legend) legend.textContent = `Who shares item ${to + 1}`;
    last.after(row);
    row.querySelector('input[name$=".description"]')?.focus();
    update();
  }

  function update() {
    const mode = field("split.mode")?.value || "equal";
    showMode(mode);
    showFolds();
    const exponent = exponents[currency()] ?? 2;
    const amount = parseMoney(field("amount")?.value || "", exponent, decimal);
    if (mode === "items") {
      const total = updateItems(amount, exponent);
      updatePayers(amount ?? total, exponent);
      return;
    }
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
  form.querySelector("[data-add-item]")?.addEventListener("click", addItemRow);
  form.dataset.preview = "ready";
  update();
}

const expenseForm = document.querySelector("form[data-expense-form]");
if (expenseForm) setUp(expenseForm);
