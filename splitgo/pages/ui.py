"""What templates use beside the component macros: filters for money, people and times.

- `amount|money(currency)` — minor units in the reader's language (the `locale` of the
  page's context, from Accept-Language): `12,50 €`.
- `user_id|avatar_class` — one of `AVATAR_COLOURS` classes, the same for a person
  everywhere (CRC-32 of the id), so no inline style is ever needed; `name|initials`.
- `rfc3339|when` — a time in UTC words ("3 Mar 2025, 14:05 UTC"); with JavaScript,
  static/app.js rewrites each `<time>` in the browser's own zone.
- `name|input_id` — the id of a form input named by a dotted path.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import jinja2

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


FILTERS: dict[str, Any] = {
    "money": money,
    "avatar_class": avatar_class,
    "initials": initials,
    "when": when,
    "input_id": input_id,
}
