"""Pure parsing for the bot: the `/add` arguments and amounts into integer minor units
(`format_money` beside the currency table says them back). No IO, no aiogram: every
function here is table-tested.

Error sentences are plain text (they may quote what the user typed); the caller escapes
them for Telegram's HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from actors.payments.messages import CURRENCIES, MAX_AMOUNT, exponent_of
from actors.splits.messages import DESCRIPTION_MAX, GroupView

# "12", "12.50", "12,5": ASCII digits only, one decimal separator, no sign, no exponent
_AMOUNT = re.compile(r"(?P<units>[0-9]+)(?:[.,](?P<decimals>[0-9]+))?")
_SIGNED = re.compile(r"[+-][0-9]+(?:[.,][0-9]+)?")
# "@Trip", '@"Road trip"' (phones turn straight quotes into curly ones: accept those too),
# at the start or after a space, so an email address in a description is not a group
_GROUP = re.compile(r'(?:^|(?<=\s))@(?:"(?P<quoted>[^"]*)"|“(?P<curly>[^”]*)”|(?P<word>\S+))')


class UsageError(ValueError):
    """The arguments cannot be understood; `sentence` tells the user what is wrong."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


@dataclass(frozen=True, slots=True)
class AddArgs:
    """What `/add` asked for; the amount becomes minor units once the group's currency is
    known."""

    amount: Decimal
    description: str
    group: str | None
    currency: str | None = None  # written after the amount; the group's when None


def parse_add(args: str | None) -> AddArgs:
    """Read `12.50 Pizza @Trip` or `12.50 USD Pizza @Trip` (the currency and the group are
    optional, `@"Road trip"` for spaces). A currency is a known ISO 4217 code, in any case,
    right after the amount: "12 eur Pizza" is EUR, "12 Eurostar" is a description."""
    text = (args or "").strip()
    if not text:
        raise UsageError("Tell me the amount and what it was for.")
    first, *others = text.split(maxsplit=1)
    amount = parse_amount(first)
    rest = others[0] if others else ""
    currency = None
    code, *after = rest.split(maxsplit=1) if rest else ("",)
    if code.upper() in CURRENCIES and len(code) == 3:
        currency, rest = code.upper(), (after[0] if after else "")
    description, group = _split_group(rest)
    if not description:
        raise UsageError("What was it for? Add a description after the amount.")
    if len(description) > DESCRIPTION_MAX:
        raise UsageError(f"The description is too long (at most {DESCRIPTION_MAX} characters).")
    return AddArgs(amount=amount, description=description, group=group, currency=currency)


def _split_group(text: str) -> tuple[str, str | None]:
    """The description and the group named by the last `@` mention, if any."""
    mentions = list(_GROUP.finditer(text))
    if not mentions:
        return " ".join(text.split()), None
    last = mentions[-1]
    group = next(part for part in last.group("quoted", "curly", "word") if part is not None)
    group = " ".join(group.split())
    if not group:
        raise UsageError('The group name after @ is empty; write it like @Trip or @"Road trip".')
    description = " ".join(f"{text[: last.start()]} {text[last.end() :]}".split())
    return description, group


def parse_amount(text: str) -> Decimal:
    """A positive amount written with `.` or `,` as the decimal separator."""
    text = text.strip()
    if _SIGNED.fullmatch(text):
        raise UsageError("The amount must be more than zero.")
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise UsageError(f"“{text}” is not an amount; write it like 12.50.")
    decimals = match.group("decimals")
    amount = Decimal(f"{match.group('units')}.{decimals}" if decimals else match.group("units"))
    if amount == 0:
        raise UsageError("The amount must be more than zero.")
    return amount


def to_minor_units(amount: Decimal, currency: str) -> int:
    """`12.50` EUR → 1250, `1200` JPY → 1200; more decimals than the currency has is refused."""
    exponent = exponent_of(currency)
    written = -int(amount.as_tuple().exponent)
    if written > exponent:
        if exponent == 0:
            raise UsageError(f"{currency} amounts have no decimals.")
        raise UsageError(f"{currency} amounts have at most {exponent} decimals.")
    minor = int(amount.scaleb(exponent))
    if minor <= 0:
        raise UsageError("The amount must be more than zero.")
    if minor > MAX_AMOUNT:
        raise UsageError("That amount is too large.")
    return minor


def pick_group(groups: Sequence[GroupView], name: str | None) -> GroupView:
    """The group an `/add` is for: named (case-insensitively), or the only one there is."""
    if not groups:
        raise UsageError("You are not in any group yet; create one in the app first.")
    if name is None:
        if len(groups) == 1:
            return groups[0]
        raise UsageError(f"Which group? Add @ and its name; you are in {_names(groups)}.")
    wanted = name.casefold()
    matches = [group for group in groups if group.name.casefold() == wanted]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"You are in {len(matches)} groups named {name}; add this expense in the app."
        )
    raise UsageError(f"You are in no group named {name}; you are in {_names(groups)}.")


def _names(groups: Sequence[GroupView]) -> str:
    return ", ".join(group.name for group in groups)
