"""What templates use beside the component macros: filters for money, people and times.

- `amount|money(currency)` — minor units in the reader's language (the `locale` of the
  page's context, from Accept-Language): `12,50 €`.
- `user_id|avatar_class` — one of `AVATAR_COLOURS` classes, the same for a person
  everywhere (CRC-32 of the id), so no inline style is ever needed; `name|initials`.
- `rfc3339|when` — a time in UTC words ("3 Mar 2025, 14:05 UTC"); with JavaScript,
  static/app.js rewrites each `<time>` in the browser's own zone.
- `name|input_id` — the id of a form input named by a dotted path.
- `person_chip(user_id, name, size="", show_name=True)` — a person's circle and name.
- `money_span(amount, currency, signed=False, tone=True, tone_of=None)` — an amount in
  its `<span class="money">`, toned by sign: a function, not a macro, because a list of
  expenses calls it a hundred times a page and a Jinja2 macro call costs ten times more.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import jinja2
from markupsafe import Markup, escape

from splitgo.pages.money import format_money

AVATAR_COLOURS = 8  # .avatar-0 … .avatar-7 in static/app.css


def avatar_class(user_id: str | None) -> str:
    """The colour class of a person's avatar, chosen by their id among a fixed set."""
    return f"avatar-{zlib.crc32((user_id or '').encode()) % AVATAR_COLOURS}"


def initials(name: str | None) -> str:
    """One or two letters for a name's circle: "Ada Lovelace" is "AL", "bo" is "B"."""
    words = [word for word in (name or "").split() if word[:1].isalnum()]
    if not words:
        return "?"
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def when(rfc3339: str | None) -> str:
    """An RFC 3339 time as words in UTC; what cannot be read is shown as it came."""
    if not rfc3339:
        return ""
    try:
        moment = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return rfc3339
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def input_id(name: str) -> str:
    """The element id of the input `name` (`split.shares.0.amount` → `f-split-shares-0-amount`)."""
    return "f-" + "".join(char if char.isalnum() or char in "-_" else "-" for char in name)


@jinja2.pass_context
def money(context: jinja2.runtime.Context, amount: int, currency: str) -> str:
    """Filter: minor units in the page's language."""
    return format_money(int(amount), currency, str(context.get("locale", "en")))


@jinja2.pass_context
def money_span(
    context: jinja2.runtime.Context,
    amount: int,
    currency: str,
    signed: bool = False,
    tone: bool = True,
    tone_of: int | None = None,
) -> Markup:
    """An amount in the reader's format; `signed` adds + to what is owed to you. The tone
    (owed green, owing orange; by the sign of `tone_of`, else of the amount) never carries
    the meaning alone: words say it too."""
    sign = amount if tone_of is None else tone_of
    toned = (" is-owed" if sign > 0 else " is-owing" if sign < 0 else "") if tone else ""
    plus = "+" if signed and amount > 0 else ""
    text = escape(format_money(int(amount), currency, str(context.get("locale", "en"))))
    return Markup(f'<span class="money{toned}">{plus}{text}</span>')


def person_chip(
    user_id: str | None, name: str | None, size: str = "", show_name: bool = True
) -> Markup:
    """A person: initials in a circle of their colour, and their name (a function for
    the reason money_span is one)."""
    classes = f"person{' ' + size if size else ''}{'' if show_name else ' avatar-only'}"
    circle = (
        f'<span class="avatar {avatar_class(user_id)}" aria-hidden="true">'
        f"{escape(initials(name))}</span>"
    )
    label = f'<span class="person-name">{escape(name or "Someone")}</span>' if show_name else ""
    return Markup(f'<span class="{escape(classes)}">{circle}{label}</span>')


GLOBALS: dict[str, Any] = {"money_span": money_span, "person_chip": person_chip}

FILTERS: dict[str, Any] = {
    "money": money,
    "avatar_class": avatar_class,
    "initials": initials,
    "when": when,
    "input_id": input_id,
}
