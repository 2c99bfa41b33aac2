"""Pages: a group's expenses — the Expenses tab (search, filters, pages), the expense
form (add and edit, every split mode, several payers), an expense with its shares,
history and comments, delete with undo, and the CSV export.

One path to the actors: the form's inputs are named by the JSON paths of the route's
body (`description`, `split.mode`, `split.shares.2.amount`, `paid_by.1.amount`, …) and
become `ExpenseBody` / `ExpensePatch` through `Form.parse`, then the splits actor's
command through the JSON route's own `add_expense_message` / `edit_expense_message`. A
refusal comes back at its input, what was typed kept; the sums the split rules refuse
are said in money ("Shares add up to 85,00 €; the expense is 90,00 €.").

The form has a row per member. Who takes part: in the equal and adjustment splits,
the ticked rows; in the exact, percent and shares splits, the ticked rows with a value
typed. Several payers: any row with an amount under "Paid by several people" makes
`paid_by` the list of those rows, else the one payer chosen.

The splits actor cannot bring a deleted expense back, so undo adds it again (a fresh
id): an equal split as the same equal split, an itemized bill of equally shared items as
the same bill, any other as the exact shares it had. What to add travels in a
short-lived cookie, shown once as the Undo button's hidden input.

Issue 17. An amount in another currency than the group's may carry a `rate` (1 USD = ?
EUR, typed as people write decimals) or a `group_amount` (what it made in the group's
currency); with neither, the day's rate is looked up: add, edit and undo ask through
`rates.ask_priced`, as the JSON routes do. The split mode "Itemized" reads rows of
`items.<row>.description`, `.amount` and ticked `items.<row>.shared_by.<user id>` (none
ticked: everyone shares it equally), with `tax`, `tip` and `spread`; blank rows
are skipped and the rest renumbered, a refusal shown at the row it names. A repeating
expense may end on a day (`until`) or after a number of times (`times`), chosen by
`ends`; the end travels beside the body, which has no field for it.
"""

from __future__ import annotations

import base64
import datetime
import re
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from actors.payments.messages import CURRENCIES
from actors.splits.messages import (
    MAX_ITEMS,
    RECURRENCE_TIMES_MAX,
    ActivityPage,
    AddComment,
    CommentList,
    CsvExport,
    DeleteExpense,
    ExpenseNotFound,
    ExpensePage,
    ExpenseView,
    ExportGroup,
    GetActivity,
    GetExpense,
    GetGroup,
    GroupView,
    ListComments,
    ListExpenses,
    ListRecurring,
    RecurringList,
    SetRecurrenceEnd,
)
from splitgo.pages import chat, cookies
from splitgo.pages.attachments import attachments_context
from splitgo.pages.forms import REFUSALS, Converter, Form, as_problem, read_form
from splitgo.pages.group_page import group_context, header_context
from splitgo.pages.guards import signed_in
from splitgo.pages.money import ENGLISH, STYLES, format_money, format_number, locale_of, parse_money
from splitgo.pages.render import named, redirect, render, render_with_form
from splitgo.pages.sessions import Viewer
from splitgo.web.payments import field_problem
from splitgo.web.problems import ProblemError
from splitgo.web.splits.asking import ask_splits
from splitgo.web.splits.bodies import (
    CommentBody,
    ExpenseBody,
    ExpensePatch,
    ItemBody,
    PayerBody,
    ShareBody,
    SplitBody,
    add_expense_message,
    edit_expense_message,
)
from splitgo.web.splits.history import attachment
from splitgo.web.splits.rates import ask_priced

routes = web.RouteTableDef()

PAGE_SIZE = 50  # expenses on one page of the list
SCAN_LIMIT = 200  # expenses asked for at once while searching
SCAN_MAX = 2_000  # expenses one search request looks through before offering "older"
PERSON_LIST_MAX = 50  # members the Person filter lists; a larger group types a name
HISTORY_SCAN = 3  # pages of the activity feed searched for an expense's history
MODES: tuple[tuple[str, str], ...] = (
    ("equal", "Equally"),
    ("exact", "Exact amounts"),
    ("percent", "Percentages"),
    ("shares", "Shares (weights)"),
    ("adjustment", "Equally, with adjustments"),
    ("items", "Itemized bill (items, tax, tip)"),
)
MODE_NAMES = dict(MODES)
# the share line's field each mode reads from a row's inputs
MODE_INPUT: dict[str, str | None] = {
    "equal": None,
    "exact": "amount",
    "percent": "percent",
    "shares": "shares",
    "adjustment": "amount",
}
RECURRENCES = (("weekly", "Every week"), ("monthly", "Every month"), ("yearly", "Every year"))
ENDS = (("never", "Never"), ("until", "On a date"), ("times", "After a number of times"))
SPREADS = (
    ("proportional", "In proportion to each item's amount"),
    ("equal", "Equally over the items"),
)
CONVERSION = ("rate", "group_amount")  # the inputs of an amount in another currency
ITEM_ROWS = 5  # blank item rows the form shows at first (more: ?items=N, or JavaScript)
# what a rate's source means to a reader (cache and fixed are the rates actor's fallbacks)
RATE_SOURCES = {
    "given": "your rate",
    "derived": "from the two amounts",
    "cache": "approximate rate",
    "fixed": "approximate rate",
}
CATEGORIES = ("general", "food", "groceries", "rent", "transport", "travel", "fun", "utilities")
UNDO_COOKIE = "splitgo_undo"
UNDO_SECONDS = 300
UNDO_MAX = 3_000  # characters of an undo cookie; a larger expense is deleted without undo
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_SHARE_INPUT = re.compile(r"^split\.shares\.(\d+)\.user_id$")
_PAYER_INPUT = re.compile(r"^paid_by\.(\d+)\.user_id$")
_PAYER_AMOUNT = re.compile(r"^paid_by\.\d+\.amount$")
_ITEM_INPUT = re.compile(r"^items\.(\d+)\.(?:description|amount)$")
_ITEM_PERSON = re.compile(r"^items\.(\d+)\.shared_by\.(.+)$")

cookies.FLASHES.update(
    {
        "expense_added": "Expense added.",
        "expense_saved": "Expense saved.",
        "expense_deleted": "Expense deleted.",
        "expense_restored": "Expense restored.",
        "comment_added": "Comment added.",
    }
)


class UndoBody(msgspec.Struct, forbid_unknown_fields=True):
    """What undo adds again: the deleted expense's body, and its group."""

    group_id: str
    body: ExpenseBody


# ── reading the expense form ──────────────────────────────────────────────────────────


@dataclass
class Chosen:
    """The inputs of a posted expense form that make the body, renumbered as the body's
    lists are, and where a refusal of each body path is shown."""

    values: dict[str, list[str]] = field(default_factory=dict)
    converters: dict[str, Converter] = field(default_factory=dict)
    inputs: dict[str, str | None] = field(default_factory=dict)
    several_payers: bool = False


def signed_money(currency: str, locale: str) -> Converter:
    """An adjustment as typed: an amount with an optional sign ("-2,50", "+1")."""

    def convert(text: str) -> int:
        typed = text.strip()
        negative = typed[:1] in ("-", "\u2212")
        minor = parse_money(typed[1:] if negative else typed, currency, locale)
        return -minor if negative else minor

    return convert


def percent_value(text: str) -> float:
    """A percent as typed ("33,33", "33.33 %") as the body's number."""
    typed = text.strip().rstrip("%").strip().replace(",", ".")
    try:
        exact = Decimal(typed)
    except InvalidOperation:
        raise ValueError("Enter a percent such as 33.5.") from None
    if not exact.is_finite():
        raise ValueError("Enter a percent such as 33.5.")
    return float(exact)


def weight_value(text: str) -> int:
    """A share weight as typed: a whole number."""
    typed = text.strip()
    if not typed.isascii() or not typed.isdigit():
        raise ValueError("Enter a whole number of shares, such as 2.")
    return int(typed)


def typed_currency(form: Form, default: str) -> str:
    """The currency the amounts are typed in (the group's while the input is not one)."""
    currency = form.value("currency").strip().upper()
    return currency if currency in CURRENCIES else default


def row_numbers(form: Form, pattern: re.Pattern[str]) -> list[int]:
    """The row numbers of the inputs matching `pattern`, in order."""
    found = {int(match[1]) for name in form.values if (match := pattern.match(name))}
    return sorted(found)


def rate_text(text: str) -> str:
    """A rate as typed ("0,9283" or "0.9283") as the body's decimal text; what is no
    rate goes on as it is, for the rate rules to refuse in words."""
    typed = text.strip().replace(" ", "")
    if "," in typed and "." not in typed:
        typed = typed.replace(",", ".")
    return typed


def choose(form: Form, *, currency: str, locale: str, group_currency: str = "") -> Chosen:
    """The body's inputs of `form` (see the module's docstring for who takes part)."""
    chosen = Chosen()
    for name in ("description", "amount", "currency", "date", "category", "recurrence"):
        if form.value(name).strip():
            chosen.values[name] = [form.value(name)]
    money: Converter = lambda text: parse_money(text, currency, locale)  # noqa: E731
    chosen.converters["amount"] = money
    chosen.inputs.update({"$.until": "until", "$.times": "times"})
    if group_currency and currency != group_currency:
        choose_conversion(form, chosen, group_currency=group_currency, locale=locale)
    mode = form.value("split.mode") or "equal"
    if mode == "items":
        choose_items(form, chosen, money)
    else:
        choose_split(form, chosen, mode, money, currency=currency, locale=locale)
    choose_payers(form, chosen, money)
    return chosen


def choose_conversion(form: Form, chosen: Chosen, *, group_currency: str, locale: str) -> None:
    """The rate or the amount in the group's currency, when typed (a rate typed for the
    group's own currency is not read: the inputs are only offered for another one)."""
    chosen.inputs["$.rate"] = "rate"
    chosen.inputs["$.group_amount"] = "group_amount"
    if form.value("rate").strip():
        chosen.values["rate"] = [form.value("rate")]
        chosen.converters["rate"] = rate_text
    if form.value("group_amount").strip():
        chosen.values["group_amount"] = [form.value("group_amount")]
        chosen.converters["group_amount"] = lambda text: parse_money(text, group_currency, locale)


def choose_items(form: Form, chosen: Chosen, money: Converter) -> None:
    """The itemized bill's rows that hold something, renumbered; tax, tip and spread."""
    for name in ("items", "tax", "tip", "spread"):
        chosen.inputs[f"$.{name}"] = name
    chosen.inputs["$.split"] = "items"
    chosen.inputs["$.amount"] = "amount"
    # each row's ticked people, in the order the form lists them (which gets a left-over
    # cent follows it)
    people: dict[int, list[str]] = {}
    for name in form.values:
        if (found := _ITEM_PERSON.match(name)) and form.value(name):
            people.setdefault(int(found[1]), []).append(found[2])
    position = 0
    for row in row_numbers(form, _ITEM_INPUT):
        description = form.value(f"items.{row}.description").strip()
        typed = form.value(f"items.{row}.amount").strip()
        if not description and not typed:
            continue  # a blank row (its ticks alone say nothing)
        at = f"items.{position}"
        chosen.values[f"{at}.description"] = [description]
        chosen.values[f"{at}.amount"] = [typed]
        chosen.converters[f"{at}.amount"] = money
        for field_name in ("description", "amount"):
            where = f"items.{row}.{field_name}"
            chosen.inputs[f"$.{at}.{field_name}"] = where
            chosen.inputs[f"$.items[{position}].{field_name}"] = where
        chosen.inputs[f"$.items[{position}]"] = f"items.{row}.amount"
        ticked = people.get(row, [])
        for suffix in ("", ".mode", ".shares"):
            chosen.inputs[f"$.items[{position}].split{suffix}"] = f"items.{row}.split"
        if ticked:
            chosen.values[f"{at}.split.mode"] = ["equal"]
            for person, user_id in enumerate(ticked):
                chosen.values[f"{at}.split.shares.{person}.user_id"] = [user_id]
                line = f"$.items[{position}].split.shares[{person}]"
                chosen.inputs[line] = f"items.{row}.split"
                chosen.inputs[f"{line}.user_id"] = f"items.{row}.split"
        position += 1
    if position == 0:
        raise field_problem("$.items", "Add at least one item: what it is and its amount.")
    for name in ("tax", "tip"):
        if form.value(name).strip():
            chosen.values[name] = [form.value(name)]
            chosen.converters[name] = money
    chosen.values["spread"] = [form.value("spread") or "proportional"]


def choose_split(
    form: Form, chosen: Chosen, mode: str, money: Converter, *, currency: str, locale: str
) -> None:
    """The split's rows of `form` (see the module's docstring for who takes part)."""
    chosen.values["split.mode"] = [mode]
    chosen.inputs["$.split.mode"] = "split.mode"
    chosen.inputs["$.split"] = "split.shares"
    chosen.inputs["$.split.shares"] = "split.shares"
    wanted = MODE_INPUT.get(mode)
    convert: Converter | None = {
        "amount": signed_money(currency, locale) if mode == "adjustment" else money,
        "percent": percent_value,
        "shares": weight_value,
    }.get(wanted or "")
    position = 0
    for row in row_numbers(form, _SHARE_INPUT):
        user_id = form.value(f"split.shares.{row}.user_id")
        typed = form.value(f"split.shares.{row}.{wanted}").strip() if wanted else ""
        if not user_id or (mode in ("exact", "percent", "shares") and not typed):
            continue
        chosen.values[f"split.shares.{position}.user_id"] = [user_id]
        where = f"split.shares.{row}.user_id"
        chosen.inputs[f"$.split.shares[{position}].user_id"] = where
        chosen.inputs[f"$.split.shares[{position}]"] = where
        if wanted and typed and convert is not None:
            name = f"split.shares.{position}.{wanted}"
            chosen.values[name] = [typed]
            chosen.converters[name] = convert
            chosen.inputs[f"$.{name}"] = f"split.shares.{row}.{wanted}"
            chosen.inputs[f"$.split.shares[{position}].{wanted}"] = f"split.shares.{row}.{wanted}"
        position += 1
    if position == 0:
        problem = "Choose at least one person to split with."
        if mode in ("exact", "percent", "shares"):
            problem = "Type a value for at least one person."
        raise field_problem("$.split.shares", problem)


def choose_payers(form: Form, chosen: Chosen, money: Converter) -> None:
    """Several payers (the rows with an amount), else the one chosen."""
    payer = 0
    for row in row_numbers(form, _PAYER_INPUT):
        typed = form.value(f"paid_by.{row}.amount").strip()
        if not typed:
            continue
        chosen.values[f"paid_by.{payer}.user_id"] = [form.value(f"paid_by.{row}.user_id")]
        chosen.values[f"paid_by.{payer}.amount"] = [typed]
        chosen.converters[f"paid_by.{payer}.amount"] = money
        chosen.inputs[f"$.paid_by.{payer}.amount"] = f"paid_by.{row}.amount"
        chosen.inputs[f"$.paid_by[{payer}].amount"] = f"paid_by.{row}.amount"
        chosen.inputs[f"$.paid_by[{payer}].user_id"] = f"paid_by.{row}.amount"
        chosen.inputs[f"$.paid_by[{payer}]"] = f"paid_by.{row}.amount"
        payer += 1
    chosen.several_payers = payer > 0
    if payer == 0 and form.value("paid_by"):
        chosen.values["paid_by"] = [form.value("paid_by")]
    chosen.inputs["$.paid_by"] = "payers" if chosen.several_payers else "paid_by"


def recurrence_end(form: Form) -> tuple[str | None, int | None]:
    """The end chosen for a repeating expense: a last day (`until`), a number of times
    (`times`, the first included), or neither (never; or it does not repeat)."""
    if form.value("recurrence") in ("", "none"):
        return None, None
    ends = form.value("ends") or "never"
    if ends == "until":
        day = form.value("until").strip()
        if not day:
            raise field_problem("$.until", "Choose the day of the last time.")
        try:
            datetime.date.fromisoformat(day)
        except ValueError:
            raise field_problem("$.until", "Enter a date such as 2026-12-31.") from None
        return day, None
    if ends == "times":
        typed = form.value("times").strip()
        if (
            not typed.isascii()
            or not typed.isdigit()
            or not 1 <= int(typed) <= RECURRENCE_TIMES_MAX
        ):
            raise field_problem(
                "$.times", f"Enter how many times in all, 1 to {RECURRENCE_TIMES_MAX}."
            )
        return None, int(typed)
    return None, None


def parse_body(form: Form, chosen: Chosen, body_type: type[Any]) -> Any:
    """The route's body struct of the chosen inputs, through the form's own conversion."""
    parsing = Form(values=chosen.values, key=form.key)
    return parsing.parse(body_type, converters=chosen.converters)


def in_words(problem: ProblemError, body: Any, currency: str, locale: str) -> dict[str, str]:
    """The sums the split rules refuse, said in money: `{input: words}`."""
    words: dict[str, str] = {}
    fields = {found.field for found in problem.errors}
    if body is not None and body.items and body.amount is not None and "$.amount" in fields:
        total = sum(item.amount for item in body.items) + (body.tax or 0) + (body.tip or 0)
        words["amount"] = (
            f"The items, tax and tip make {format_money(total, currency, locale)}; the amount"
            f" is {format_money(body.amount, currency, locale)}. Correct one, or leave the"
            " amount empty."
        )
    if body is None or body.split is None or body.amount is None:
        return words
    amount = format_money(body.amount, currency, locale)
    lines = body.split.shares
    if "$.split.shares" in fields:
        mode = body.split.mode
        if mode == "exact":
            total = sum(line.amount or 0 for line in lines)
            words["split.shares"] = (
                f"Shares add up to {format_money(total, currency, locale)}; "
                f"the expense is {amount}."
            )
        elif mode == "percent":
            percent = sum((Decimal(str(line.percent or 0)) for line in lines), Decimal(0))
            words["split.shares"] = (
                f"Percentages add up to {percent.normalize():f} %; make them 100 %."
            )
        elif mode == "adjustment":
            total = sum(line.amount or 0 for line in lines)
            words["split.shares"] = (
                f"Adjustments add up to {format_money(total, currency, locale)}, "
                f"more than the expense ({amount})."
            )
        elif mode == "shares":
            words["split.shares"] = "Give at least one person more than 0 shares."
    if "$.paid_by" in fields and isinstance(body.paid_by, list):
        paid = sum(line.amount for line in body.paid_by)
        words["payers"] = (
            f"Payers paid {format_money(paid, currency, locale)}; the expense is {amount}."
        )
    return words


def refuse(
    form: Form, error: Any, chosen: Chosen | None, body: Any, currency: str, locale: str
) -> None:
    """Show `error` at its inputs, its sums in money."""
    unread = {"$.split.shares": "split.shares", "$.items": "items", "$.until": "until"}
    form.refuse(error, inputs=chosen.inputs if chosen else {**unread, "$.times": "times"})
    for name, words in in_words(as_problem(error), body, currency, locale).items():
        if name in form.errors:
            form.errors[name] = words


# ── the form's context ────────────────────────────────────────────────────────────────


def blank_form(group: Mapping[str, Any], viewer: Viewer) -> Form:
    """The add form as first shown: paid by you, split equally among everyone."""
    form = Form.blank(currency=group["currency"], paid_by=viewer.user_id)
    form.values["split.mode"] = ["equal"]
    for row, member in enumerate(group["members"]):
        form.values[f"split.shares.{row}.user_id"] = [member["user_id"]]
        form.values[f"paid_by.{row}.user_id"] = [member["user_id"]]
    return form


def form_of(expense: ExpenseView, group: Mapping[str, Any], locale: str) -> Form:
    """The edit form of `expense`: an equal split as ticked rows, any other as the exact
    shares it makes (the view keeps the shares, not the percents or weights typed)."""
    currency = expense.currency
    form = Form.blank(
        description=expense.description,
        amount=format_number(expense.amount, currency, locale),
        currency=currency,
        date=expense.date,
        category=expense.category,
        recurrence=expense.recurrence or "none",
        paid_by=expense.paid_by[0].user_id if expense.paid_by else "",
    )
    itemized = expense.split_mode == "items" and bool(expense.items)
    # an itemized bill's rows are ticked (equally) for a switch to another split
    equal = expense.split_mode == "equal" or itemized
    form.values["split.mode"] = ["items" if itemized else "equal" if equal else "exact"]
    shares = {share.user_id: share.amount for share in expense.shares}
    paid = {payer.user_id: payer.amount for payer in expense.paid_by}
    for row, member in enumerate(group["members"]):
        user_id = member["user_id"]
        form.values[f"paid_by.{row}.user_id"] = [user_id]
        if user_id in shares:
            form.values[f"split.shares.{row}.user_id"] = [user_id]
            if not equal:
                typed = format_number(shares[user_id], currency, locale)
                form.values[f"split.shares.{row}.amount"] = [typed]
        if len(paid) > 1 and user_id in paid:
            typed = format_number(paid[user_id], currency, locale)
            form.values[f"paid_by.{row}.amount"] = [typed]
    if itemized:
        bill_form(form, expense, group, locale)
    return form


def bill_form(form: Form, expense: ExpenseView, group: Mapping[str, Any], locale: str) -> None:
    """An itemized bill's rows in the edit form: each item shared equally by the people
    it had (the form's one way to share an item); the amount left empty, as the items,
    tax and tip make it."""
    currency = expense.currency
    form.values.pop("amount", None)
    members = {member["user_id"] for member in group["members"]}
    for index, item in enumerate(expense.items or []):
        form.values[f"items.{index}.description"] = [item.description]
        form.values[f"items.{index}.amount"] = [format_number(item.amount, currency, locale)]
        for share in item.shares:
            if share.user_id in members:
                form.values[f"items.{index}.shared_by.{share.user_id}"] = ["yes"]
    for name in ("tax", "tip"):
        value = getattr(expense, name)
        if value:
            form.values[name] = [format_number(value, currency, locale)]
    form.values["spread"] = [expense.spread or "proportional"]


def item_rows(request: web.Request, form: Form) -> int:
    """How many item rows the form shows: ITEM_ROWS, the rows posted or filled in, or
    as many as `?items=` asks for (at most MAX_ITEMS)."""
    used = [int(found[1]) for name in form.values if (found := _ITEM_INPUT.match(name))]
    asked = request.query.get("items", "")
    wanted = int(asked) if asked.isascii() and asked.isdigit() and len(asked) <= 4 else 0
    return min(max(ITEM_ROWS, max(used, default=-1) + 2, wanted), MAX_ITEMS)


def rate_words(
    expense: Mapping[str, Any], group_currency: str, locale: str
) -> dict[str, str] | None:
    """An expense's (or settlement's) conversion in words: "1 USD = 0,9283 EUR" and
    where the rate came from ("ECB rate of 10 May 2024", "your rate", "approximate
    rate"); None when it has none."""
    rate = expense.get("rate")
    if not rate or expense.get("group_amount") is None:
        return None
    source = expense.get("rate_source") or "given"
    words = RATE_SOURCES.get(source, "approximate rate")
    if source == "ecb":
        day = expense.get("rate_day")
        words = f"ECB rate of {day_words(day)}" if day else "ECB rate"
    decimal = STYLES.get(locale, ENGLISH).decimal
    return {
        "rate": f"1 {expense['currency']} = {str(rate).replace('.', decimal)} {group_currency}",
        "source": words,
        "approximate": "yes" if source in ("cache", "fixed") else "",
    }


def form_context(
    request: web.Request, group: Mapping[str, Any], form: Form, *, editing: ExpenseView | None
) -> dict[str, Any]:
    """What expense_form.html needs beside the group's layout."""
    locale = locale_of(request.headers.get("Accept-Language"))
    style = STYLES.get(locale, ENGLISH)
    mode = form.value("split.mode") or "equal"
    group_currency = group["currency"]
    currency = form.value("currency").strip().upper() or group_currency
    conversion_used = any(form.value(name).strip() or form.error(name) for name in CONVERSION)
    more_used = (
        mode != "equal"
        or any(form.value(name).strip() for name in form.values if _PAYER_AMOUNT.match(name))
        or bool(form.value("date") or form.value("recurrence") not in ("", "none"))
        or (form.value("category") not in ("", "general"))
        or any(
            not form.value(f"split.shares.{row}.user_id") for row in range(len(group["members"]))
        )
        or bool(form.errors)
    )
    base = f"/groups/{group['id']}/expenses"
    return {
        "form": form,
        "members": group["members"],
        "modes": MODES,
        "mode": mode,
        "mode_name": MODE_NAMES.get(mode, mode),
        "converted_from": MODE_NAMES.get(editing.split_mode)
        if editing is not None and editing.split_mode not in ("equal", "exact")
        else None,
        "recurrences": RECURRENCES,
        "categories": CATEGORIES,
        "currencies": sorted(CURRENCIES),
        "exponents": msgspec.json.encode(CURRENCIES).decode(),
        "decimal": style.decimal,
        "more_open": more_used,
        "group_currency": group_currency,
        "foreign": currency != group_currency,
        "conversion_open": currency != group_currency or conversion_used,
        "current_rate": rate_words(msgspec.to_builtins(editing), group_currency, locale)
        if editing is not None
        else None,
        "item_rows": item_rows(request, form),
        "max_items": MAX_ITEMS,
        "more_rows": f"{request.path}?items={item_rows(request, form) + ITEM_ROWS}#f-items",
        "items_reshaped": editing is not None
        and any(item.split_mode != "equal" for item in editing.items or []),
        "spreads": SPREADS,
        "ends": ENDS,
        "editing": editing,
        "action": f"{base}/{editing.id}/edit" if editing else f"{base}/new",
        "cancel": f"{base}/{editing.id}" if editing else f"/groups/{group['id']}",
        "title": f"Edit “{editing.description}”" if editing else "Add an expense",
    }


async def render_form(
    request: web.Request,
    viewer: Viewer,
    group_id: str,
    form: Form,
    *,
    editing: ExpenseView | None = None,
    context: dict[str, Any] | None = None,
) -> web.Response:
    layout = context or await group_context(request, viewer, group_id)
    page = {**layout, **form_context(request, layout["group"], form, editing=editing)}
    return await render_with_form(request, "expense_form.html", page, form)


# ── the list ──────────────────────────────────────────────────────────────────────────


def people_words(names: list[str]) -> str:
    """`["you", "Ana", "Bo"]` as "you, Ana and Bo"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def your_part(expense: Mapping[str, Any], me: str) -> dict[str, Any]:
    """Who paid and what it means to the viewer, in words: "Ana paid", "you owe" 30,00."""
    payers = ["you" if line["user_id"] == me else line.get("name") or "Someone"
              for line in expense["paid_by"]]  # fmt: skip
    paid = sum(line["amount"] for line in expense["paid_by"] if line["user_id"] == me)
    owed = sum(line["amount"] for line in expense["shares"] if line["user_id"] == me)
    net = paid - owed
    who = people_words(payers) or "Nobody"
    if net > 0:
        words = "you lent"
    elif net < 0:
        words = "you owe"
    elif paid or owed:
        words = "your own share"
    else:
        words = "not involved"
    return {
        "payers": who[:1].upper() + who[1:] + " paid",
        "words": words,
        "amount": abs(net) if net else owed,
        "net": net,
        "show_amount": bool(net or owed),
    }


def day_words(day: str) -> str:
    """A YYYY-MM-DD date as "3 Mar 2026" (as it came when it is not one)."""
    try:
        moment = datetime.date.fromisoformat(day)
    except ValueError:
        return day
    return f"{moment.day} {moment:%b %Y}"


@dataclass
class Filters:
    """The Expenses tab's search and filters, from the query string. `person` is a member's
    id (the Person list of a small group); `who` words of a name (a large group's Person
    field), which `resolve` turns into the ids of the members so named."""

    q: str = ""
    person: str = ""
    who: str = ""
    month: str = ""
    cursor: str | None = None
    people: frozenset[str] = frozenset()

    @classmethod
    def of(cls, request: web.Request) -> Filters:
        query = request.query
        month = query.get("month", "").strip()
        cursor = query.get("cursor") or None
        if cursor is not None and (len(cursor) > 200 or not cursor.isprintable()):
            cursor = None
        return cls(
            q=query.get("q", "").strip()[:200],
            person=query.get("person", "").strip()[:64],
            who=" ".join(query.get("who", "").split())[:100],
            month=month if _MONTH.match(month) else "",
            cursor=cursor,
        )

    @property
    def active(self) -> bool:
        return bool(self.q or self.person or self.who or self.month)

    async def resolve(self, request: web.Request, viewer: Viewer, group_id: str) -> None:
        """The members `who` names (case and accents of spacing aside; "you" is the
        viewer), so `matches` can test them; nobody when no name matches."""
        if not self.who:
            return
        view: GroupView = await ask_splits(
            request, GetGroup(group_id=group_id, user_id=viewer.user_id)
        )
        words = self.who.casefold()
        members = (await named(request, view))["members"]
        self.people = frozenset(
            member["user_id"]
            for member in members
            if words in (member.get("name") or "").casefold()
            or (member["user_id"] == viewer.user_id and words in ("you", "me"))
        )

    def matches(self, expense: ExpenseView) -> bool:
        if self.q and self.q.casefold() not in expense.description.casefold():
            return False
        if self.month and not expense.date.startswith(self.month):
            return False
        if self.person or self.who:
            people = {line.user_id for line in expense.paid_by}
            people |= {line.user_id for line in expense.shares if line.amount}
            if self.person and self.person not in people:
                return False
            if self.who and people.isdisjoint(self.people):
                return False
        return True

    def query(self, cursor: str | None = None) -> str:
        """The query string of these filters (on the page after `cursor`)."""
        items = {
            "q": self.q,
            "person": self.person,
            "who": self.who,
            "month": self.month,
            "cursor": cursor or "",
        }
        text = urlencode({key: value for key, value in items.items() if value})
        return f"?{text}" if text else ""


async def expense_page(
    request: web.Request, viewer: Viewer, group_id: str, filters: Filters
) -> tuple[list[ExpenseView], str | None, int]:
    """One page of the group's expenses, newest first, that match `filters`; the cursor
    of the next page; how many were looked through."""
    if not filters.active:
        page: ExpensePage = await ask_splits(
            request,
            ListExpenses(
                group_id=group_id, user_id=viewer.user_id, limit=PAGE_SIZE, cursor=filters.cursor
            ),
        )
        return list(page.items), page.next_cursor, len(page.items)
    await filters.resolve(request, viewer, group_id)
    if filters.who and not filters.people:
        return [], None, 0
    found: list[ExpenseView] = []
    cursor = filters.cursor
    looked = 0
    while True:
        page = await ask_splits(
            request,
            ListExpenses(
                group_id=group_id, user_id=viewer.user_id, limit=SCAN_LIMIT, cursor=cursor
            ),
        )
        looked += len(page.items)
        found.extend(expense for expense in page.items if filters.matches(expense))
        cursor = page.next_cursor
        if cursor is None or len(found) >= PAGE_SIZE or looked >= SCAN_MAX:
            return found, cursor, looked


async def list_context(
    request: web.Request, viewer: Viewer, group: Mapping[str, Any], filters: Filters
) -> dict[str, Any]:
    """What expenses_list.html needs: the page of expenses, in words for the viewer."""
    items, next_cursor, looked = await expense_page(request, viewer, group["id"], filters)
    expenses = await named(request, items) if items else []
    locale = locale_of(request.headers.get("Accept-Language"))
    for expense in expenses:
        expense["yours"] = your_part(expense, viewer.user_id)
        expense["day"] = day_words(expense["date"])
        expense["conversion"] = rate_words(expense, group["currency"], locale)
    base = f"/groups/{group['id']}"
    return {
        "expenses": expenses,
        "filters": filters,
        "older": f"{base}{filters.query(next_cursor)}" if next_cursor else None,
        "newest": f"{base}{filters.query()}" if filters.cursor else None,
        "looked": looked,
        "live_src": f"{base}/expenses/live{filters.query(filters.cursor)}",
    }


def undo_offer(request: web.Request, group_id: str) -> dict[str, Any] | None:
    """The expense just deleted in this group, to offer its undo once."""
    blob = cookies.read(request, UNDO_COOKIE)
    if not blob:
        return None
    undo = decode_undo(blob)
    if undo is None or undo.group_id != group_id:
        return None
    cookies.queue(request, UNDO_COOKIE, None, None)
    return {"blob": blob, "description": undo.body.description}


async def person_choices(
    request: web.Request, viewer: Viewer, group: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The members the Person filter lists, named; None for a group too large to list
    (its Person filter is a name field instead)."""
    if group["member_count"] > PERSON_LIST_MAX:
        return None
    view: GroupView = await ask_splits(
        request, GetGroup(group_id=group["id"], user_id=viewer.user_id)
    )
    members: list[dict[str, Any]] = (await named(request, view))["members"]
    return members


@routes.get("/groups/{id}")
@signed_in
async def expenses_tab(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    layout = await header_context(request, viewer, group_id)
    filters = Filters.of(request)
    listing = await list_context(request, viewer, layout["group"], filters)
    context = {
        **layout,
        **listing,
        "tab": "expenses",
        "people": await person_choices(request, viewer, layout["group"]),
        "undo": undo_offer(request, group_id),
    }
    return await render(request, "expenses.html", context)


@routes.get("/groups/{id}/expenses/live")
@signed_in
async def expenses_fragment(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The Expenses tab's list alone (its live region fetches it when the group changes)."""
    layout = await header_context(request, viewer, request.match_info["id"])
    listing = await list_context(request, viewer, layout["group"], Filters.of(request))
    return await render(request, "expenses_list.html", {**layout, **listing})


@routes.get("/groups/{id}/export.csv")
@signed_in
async def export_csv(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The group's CSV, as GET /api/v1/groups/{id}/export.csv answers it."""
    export: CsvExport = await ask_splits(
        request, ExportGroup(group_id=request.match_info["id"], user_id=viewer.user_id)
    )
    return web.Response(
        text=export.text,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": attachment(export.filename)},
    )


# ── add and edit ──────────────────────────────────────────────────────────────────────


@routes.get("/groups/{id}/expenses/new")
@signed_in
async def new_expense(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    layout = await group_context(request, viewer, group_id)
    form = blank_form(layout["group"], viewer)
    return await render_form(request, viewer, group_id, form, context=layout)


@routes.post("/groups/{id}/expenses/new")
@signed_in
async def add_expense(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    form = await read_form(request)
    layout = await group_context(request, viewer, group_id)
    locale = locale_of(request.headers.get("Accept-Language"))
    group_currency = layout["group"]["currency"]
    currency = typed_currency(form, group_currency)
    chosen: Chosen | None = None
    body: ExpenseBody | None = None
    try:
        chosen = choose(form, currency=currency, locale=locale, group_currency=group_currency)
        body = parse_body(form, chosen, ExpenseBody)
        until, times = recurrence_end(form)
        message = add_expense_message(
            body, group_id=group_id, user_id=viewer.user_id, expense_id=str(uuid.uuid4())
        )
        key = form.idempotency(request, body, caller=viewer.user_id)
        ended = msgspec.structs.replace(message, idempotency=key, until=until, times=times)
        await ask_priced(request, ended)
    except REFUSALS as error:
        refuse(form, error, chosen, body, currency, locale)
        return await render_form(request, viewer, group_id, form, context=layout)
    cookies.flash(request, "expense_added")
    return redirect(f"/groups/{group_id}")


async def current_expense(request: web.Request, viewer: Viewer) -> ExpenseView:
    expense: ExpenseView = await ask_splits(
        request,
        GetExpense(
            group_id=request.match_info["id"],
            user_id=viewer.user_id,
            expense_id=request.match_info["eid"],
        ),
    )
    return expense


@routes.get("/groups/{id}/expenses/{eid}/edit")
@signed_in
async def edit_expense_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    layout = await group_context(request, viewer, group_id)
    expense = await current_expense(request, viewer)
    locale = locale_of(request.headers.get("Accept-Language"))
    form = form_of(expense, layout["group"], locale)
    if expense.recurrence:
        await end_of(request, viewer, expense, form)
    return await render_form(request, viewer, group_id, form, editing=expense, context=layout)


async def end_of(request: web.Request, viewer: Viewer, expense: ExpenseView, form: Form) -> None:
    """The repeating expense's end in its edit form (`had_end` says there was one, so
    choosing "never" takes it away)."""
    listed: RecurringList = await ask_splits(
        request, ListRecurring(group_id=expense.group_id, user_id=viewer.user_id)
    )
    for series in listed.items:
        if series.expense_id != expense.id:
            continue
        if series.until is not None:
            form.values.update(ends=["until"], until=[series.until], had_end=["1"])
        elif series.times is not None:
            form.values.update(ends=["times"], times=[str(series.times)], had_end=["1"])


@routes.post("/groups/{id}/expenses/{eid}/edit")
@signed_in
async def edit_expense(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    form = await read_form(request)
    layout = await group_context(request, viewer, group_id)
    expense = await current_expense(request, viewer)
    locale = locale_of(request.headers.get("Accept-Language"))
    currency = typed_currency(form, expense.currency)
    group_currency = layout["group"]["currency"]
    chosen: Chosen | None = None
    body: ExpensePatch | None = None
    try:
        chosen = choose(form, currency=currency, locale=locale, group_currency=group_currency)
        body = parse_body(form, chosen, ExpensePatch)
        until, times = recurrence_end(form)
        message = edit_expense_message(body, expense, user_id=viewer.user_id)
        await ask_priced(request, msgspec.structs.replace(message, until=until, times=times))
        repeats = form.value("recurrence") not in ("", "none")
        if repeats and until is None and times is None and form.value("had_end"):
            await ask_splits(
                request,
                SetRecurrenceEnd(group_id=group_id, user_id=viewer.user_id, expense_id=expense.id),
            )
    except REFUSALS as error:
        refuse(form, error, chosen, body, currency, locale)
        return await render_form(request, viewer, group_id, form, editing=expense, context=layout)
    cookies.flash(request, "expense_saved")
    return redirect(f"/groups/{group_id}/expenses/{expense.id}")


# ── one expense: shares, history, comments; delete and undo ───────────────────────────


async def history_of(request: web.Request, viewer: Viewer, expense_id: str) -> list[Any]:
    """What happened to the expense, from the group's recent activity (newest first)."""
    found: list[Any] = []
    cursor: str | None = None
    for _ in range(HISTORY_SCAN):
        page: ActivityPage = await ask_splits(
            request,
            GetActivity(
                group_id=request.match_info["id"],
                user_id=viewer.user_id,
                limit=SCAN_LIMIT,
                cursor=cursor,
            ),
        )
        found.extend(item for item in page.items if item.expense_id == expense_id)
        cursor = page.next_cursor
        if cursor is None:
            break
    return list(await named(request, found)) if found else []


async def render_detail(
    request: web.Request,
    viewer: Viewer,
    form: Form,
    *,
    status: int = 200,
    chat_form: Form | None = None,
) -> web.Response:
    group_id = request.match_info["id"]
    layout = await group_context(request, viewer, group_id)
    expense = await current_expense(request, viewer)
    conversation = await chat.open_panel(request, viewer, "expense", expense.id, group_id)
    panel = await chat.panel_context(
        request,
        viewer,
        conversation,
        here=f"/groups/{group_id}/expenses/{expense.id}",
        form=chat_form,
        heading="Chat about this expense",
        action=f"/groups/{group_id}/expenses/{expense.id}/chat",
    )
    if chat_form is not None:
        status = chat_form.status
    comments: CommentList = await ask_splits(
        request,
        ListComments(group_id=group_id, user_id=viewer.user_id, expense_id=expense.id),
    )
    shown = await named(request, expense)
    shown["yours"] = your_part(shown, viewer.user_id)
    shown["day"] = day_words(expense.date)
    locale = locale_of(request.headers.get("Accept-Language"))
    shown["conversion"] = rate_words(shown, layout["group"]["currency"], locale)
    converted = {line["user_id"]: line["amount"] for line in shown.get("group_shares") or []}
    for line in shown["shares"]:
        line["converted"] = converted.get(line["user_id"])
    return await render(
        request,
        "expense_detail.html",
        {
            **layout,
            "title": expense.description,
            "expense": shown,
            "mode_name": "by items"
            if expense.split_mode == "items"
            else MODE_NAMES.get(expense.split_mode, expense.split_mode),
            "history": await history_of(request, viewer, expense.id),
            "comments": await named(request, comments.items) if comments.items else [],
            "form": form,
            **await attachments_context(request, viewer, expense.id),
            "chat": panel,
        },
        status=status,
        headers={**form.headers, **(chat_form.headers if chat_form is not None else {})},
    )


@routes.get("/groups/{id}/expenses/{eid}")
@signed_in
async def expense_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await render_detail(request, viewer, Form.blank())


@routes.post("/groups/{id}/expenses/{eid}/comments")
@signed_in
async def add_comment(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id, expense_id = request.match_info["id"], request.match_info["eid"]
    form = await read_form(request)
    try:
        body = form.parse(CommentBody)
        if not body.text.strip():
            raise field_problem("$.text", "a comment cannot be blank")
        await ask_splits(
            request,
            AddComment(
                group_id=group_id,
                user_id=viewer.user_id,
                expense_id=expense_id,
                comment_id=str(uuid.uuid4()),
                text=body.text,
                idempotency=form.idempotency(request, body, caller=viewer.user_id),
            ),
        )
    except REFUSALS as error:
        form.refuse(error, inputs={"$.text": "text"})
        return await render_detail(request, viewer, form, status=form.status)
    cookies.flash(request, "comment_added")
    return redirect(f"/groups/{group_id}/expenses/{expense_id}#comments")


@routes.post("/groups/{id}/expenses/{eid}/chat")
@signed_in
async def post_about_expense(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The expense page's chat panel sends a message (splitgo/pages/chat.py)."""
    group_id, expense_id = request.match_info["id"], request.match_info["eid"]
    conversation = await chat.open_panel(request, viewer, "expense", expense_id, group_id)

    async def again(form: Form) -> web.StreamResponse:
        return await render_detail(request, viewer, Form.blank(), chat_form=form)

    return await chat.send(
        request,
        viewer,
        conversation.id,
        back=f"/groups/{group_id}/expenses/{expense_id}",
        rerender=again,
    )


def undo_body(expense: ExpenseView) -> ExpenseBody:
    """The body that adds `expense` again: an equal split as it was, a bill of equally
    shared items as that bill, any other as the exact shares it made; its payers, date,
    category and recurrence; a rate typed (or derived) as it was, a looked-up one looked
    up again for its day."""
    equal = expense.split_mode == "equal"
    items = expense.items if expense.split_mode == "items" else None
    if items and not all(item.split_mode == "equal" for item in items):
        items = None  # the form's bill cannot say every item's split: its exact shares
    lines = [
        ShareBody(user_id=share.user_id, amount=None if equal else share.amount)
        for share in expense.shares
    ]
    payers = [PayerBody(user_id=line.user_id, amount=line.amount) for line in expense.paid_by]
    source = expense.rate_source
    return ExpenseBody(
        description=expense.description,
        amount=expense.amount,
        currency=expense.currency,
        paid_by=payers[0].user_id if len(payers) == 1 else payers,
        split=None if items else SplitBody(mode="equal" if equal else "exact", shares=lines),
        date=expense.date,
        category=expense.category,
        recurrence=expense.recurrence,  # type: ignore[arg-type]
        rate=expense.rate if source == "given" else None,
        group_amount=expense.group_amount if source == "derived" else None,
        items=[
            ItemBody(
                description=item.description,
                amount=item.amount,
                split=SplitBody(
                    mode="equal", shares=[ShareBody(user_id=s.user_id) for s in item.shares]
                ),
            )
            for item in items
        ]
        if items
        else None,
        tax=expense.tax if items else None,
        tip=expense.tip if items else None,
        spread=expense.spread if items else None,  # type: ignore[arg-type]
    )


def encode_undo(undo: UndoBody) -> str:
    packed = zlib.compress(msgspec.json.encode(undo), 9)
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def decode_undo(blob: str) -> UndoBody | None:
    """What an undo cookie or input holds; None for what is not one."""
    try:
        packed = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        return msgspec.json.decode(zlib.decompress(packed, bufsize=UNDO_MAX), type=UndoBody)
    except (ValueError, zlib.error, msgspec.DecodeError):
        return None


@routes.post("/groups/{id}/expenses/{eid}/delete")
@signed_in
async def delete_expense(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    group_id = request.match_info["id"]
    await read_form(request)
    try:
        expense = await current_expense(request, viewer)
    except ExpenseNotFound:  # deleted already (a second click): the list says it is gone
        cookies.flash(request, "expense_deleted")
        return redirect(f"/groups/{group_id}")
    await ask_splits(
        request, DeleteExpense(group_id=group_id, user_id=viewer.user_id, expense_id=expense.id)
    )
    blob = encode_undo(UndoBody(group_id=group_id, body=undo_body(expense)))
    if len(blob) <= UNDO_MAX:
        cookies.queue(request, UNDO_COOKIE, blob, UNDO_SECONDS)
    else:
        cookies.flash(request, "expense_deleted")
    return redirect(f"/groups/{group_id}")


@routes.post("/groups/{id}/expenses/undo")
@signed_in
async def undo_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Add the deleted expense again, through the JSON route's conversion."""
    group_id = request.match_info["id"]
    form = await read_form(request)
    undo = decode_undo(form.value("undo"))
    if undo is None or undo.group_id != group_id:
        raise ProblemError(400, "invalid_undo", "This undo is damaged. Add the expense again.")
    try:
        message = add_expense_message(
            undo.body, group_id=group_id, user_id=viewer.user_id, expense_id=str(uuid.uuid4())
        )
        key = form.idempotency(request, undo, caller=viewer.user_id)
        await ask_priced(request, msgspec.structs.replace(message, idempotency=key))
    except REFUSALS as error:
        layout = await group_context(request, viewer, group_id)
        listing = await list_context(request, viewer, layout["group"], Filters())
        problem = as_problem(error)
        offer = {
            "blob": form.value("undo"),
            "description": undo.body.description,
            "error": f"It could not be restored: {problem.detail}",
        }
        return await render(
            request,
            "expenses.html",
            {**layout, **listing, "tab": "expenses", "undo": offer},
            status=problem.status,
        )
    cookies.flash(request, "expense_restored")
    return redirect(f"/groups/{group_id}")
