"""The rates actor's whole public interface: the question, its answer, its refusals, and
the exact arithmetic edges and other actors share to use an answer.

Ask `GetRate(base=, quote=, day=)` before an expense in a foreign currency reaches the
splits actor: a shard never waits on the network, the edge does, once, here. The reply is
a `RateQuote`: `rate` units of `quote` per 1 `base`, as a decimal string (never a float),
from the rate's own `day` (the latest published on or before the day asked), and where it
came from (`source`):

- "ecb": the European Central Bank's reference rate for that day (fetched now or before);
- "cache": the feed could not be reached, so the nearest earlier day held, maybe stale;
- "fixed": the last-resort table (a currency the ECB does not publish, nothing held while
  the feed is down), or a currency against itself (exactly 1).

`RateUnavailable` (422, `rate_unavailable`) asks the caller for a rate of their own;
`parse_rate` checks such a rate and `convert` applies one to an amount in minor units.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Annotated, Any, Literal

from msgspec import Meta

from actors.payments.messages import exponent_of
from actors.runtime import DomainError, InvalidInput, Message
from actors.runtime.bounds import INT_MAX, INT_MIN, Day, check_bounds

RATES = "rates"  # the actor type's name, where edges and actors ask

RateSource = Literal["ecb", "cache", "fixed"]
# ISO 4217 code; the actor upper-cases it and refuses one it does not know
Currency = Annotated[str, Meta(min_length=3, max_length=3)]

# What a rate may look like: plain digits with at most one decimal point (no sign, no
# exponent, so no NaN, no infinity), at most 20 significant digits, 1e-12 <= rate < 1e12.
# Far wider than any real pair (KRW per KWD is ~5,000) and far narrower than would let
# one rate turn a cent into an amount no ledger holds.
RATE_TEXT_MAX = 48
RATE_DIGITS_MAX = 20
MIN_RATE = Decimal("1e-12")
MAX_RATE = Decimal("1e12")
_RATE = re.compile(r"[0-9]{1,13}(?:\.[0-9]{1,32})?")
# enough for any int64 amount times any rate above, exactly
_EXACT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[Inexact, InvalidOperation])


def rates_key(message: Any) -> str | None:
    """Shard key: the day asked, so one day's asks (and its one fetch) meet on one shard."""
    day = getattr(message, "day", None)
    return str(day) if day else None


class RatesInput(Message, frozen=True):
    """What the rates actor handles: the fields' bounds hold wherever one is made or decoded
    (actors/runtime/bounds.py), or it is InvalidInput naming the field (`$.day`)."""

    def __post_init__(self) -> None:
        check_bounds(self, InvalidInput)


class GetRate(RatesInput, frozen=True):
    """How many `quote` for 1 `base` on `day` (YYYY-MM-DD); answered with a `RateQuote`."""

    base: Currency
    quote: Currency
    day: Day


class RateQuote(Message, frozen=True):
    """The answer to `GetRate`: `rate` units of `quote` per 1 `base` (a decimal string) from
    `day`, the rate's own day (the latest published on or before `day_asked`: a weekend or
    holiday gets the working day before, today before ~16:00 CET gets yesterday's)."""

    base: str
    quote: str
    day_asked: str
    day: str
    rate: str
    source: RateSource


class RateUnavailable(DomainError):
    """No rate can be given for the pair on that day (a currency we do not know, a day in
    the future or before the euro's reference rates): the caller is asked for one."""

    code = "rate_unavailable"
    category = "invalid"

    @classmethod
    def of(cls, base: str, quote: str, day: str, why: str) -> RateUnavailable:
        """The refusal naming the pair and the day, and why, asking for a rate instead."""
        return cls(
            f"No exchange rate from {base} to {quote} is available for {day} ({why}); "
            f"give the rate yourself: how many {quote} for 1 {base}.",
            details={"base": base, "quote": quote, "day": day, "field": "rate"},
        )


class InvalidRate(DomainError):
    """A rate given as text is not a positive decimal number of sane size and precision."""

    code = "invalid_rate"
    category = "invalid"


def _invalid(why: str) -> InvalidRate:
    return InvalidRate(f"rate {why}", details={"field": "rate"})


def parse_rate(text: str) -> Decimal:
    """The rate `text` holds, exactly; InvalidRate for zero, a negative, NaN, infinity, an
    exponent, more than 20 significant digits, or a value outside 1e-12 to 1e12."""
    if not isinstance(text, str):
        raise _invalid("must be text, a decimal number such as 1.0772")
    cleaned = text.strip()
    if len(cleaned) > RATE_TEXT_MAX:
        raise _invalid(f"must be at most {RATE_TEXT_MAX} characters")
    if _RATE.fullmatch(cleaned) is None:
        raise _invalid("must be a positive decimal number such as 1.0772")
    value = Decimal(cleaned)
    if value == 0:
        raise _invalid("must be more than zero")
    if _significant_digits(value) > RATE_DIGITS_MAX:
        raise _invalid(f"must have at most {RATE_DIGITS_MAX} significant digits")
    if not MIN_RATE <= value < MAX_RATE:
        raise _invalid("must be at least 1e-12 and below 1e12")
    return value


def _significant_digits(value: Decimal) -> int:
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits)


def format_rate(value: Decimal) -> str:
    """A rate as `RateQuote.rate` carries it: plain digits, no exponent, no trailing zeros
    (parse_rate reads it back to the same value)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def convert(amount_minor: int, from_currency: str, to_currency: str, rate: str) -> int:
    """`amount_minor` of `from_currency` in minor units of `to_currency` at `rate` (units of
    `to_currency` per 1 `from_currency`): exact decimal arithmetic, rounded half to even to
    the target's minor unit (JPY none, EUR two, KWD three). InvalidRate for a bad rate.
    The result is unbounded: the caller checks it against its own maximum."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be a whole number of minor units")
    if not INT_MIN <= amount_minor <= INT_MAX:
        raise OverflowError("amount_minor is outside a signed 64-bit integer")
    value = parse_rate(rate)
    shift = exponent_of(to_currency) - exponent_of(from_currency)
    with localcontext(_EXACT):
        exact = (Decimal(amount_minor) * value).scaleb(shift)
        return int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
