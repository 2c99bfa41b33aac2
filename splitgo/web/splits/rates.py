"""The exchange rate of an expense or settlement in another currency than its group's,
looked up by the edge before the splits actor prices it: a shard never waits on the network.

The splits actor prices what it is given: a `rate`, a `group_amount`, or (in the group's
currency) neither. A foreign amount with neither is refused with `rate_unavailable` marked
`lookup` in its details, naming the pair and the day (the expense's date, as the actor reads
it: today when none was given) when the caller says it can look up (`rate_lookup`, which
`ask_with_rate` sets; without it the amount is kept with no rate, apart in the converted
balances). `ask_with_rate` then asks the rates actor for that day's rate and asks the
splits actor once more with it, its source (ecb, cache, fixed) and its own day. When no
rate can be had, the rates actor's own `rate_unavailable` is the answer.

The same-currency case (the common one) costs nothing more than the one ask; the bot uses
`ask_with_rate` with its system as the HTTP routes do (`ask_priced`).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import structlog
from aiohttp import web

from actors.rates.messages import RATES, GetRate, RateQuote, RateUnavailable
from actors.runtime import ActorSystem, DomainError
from actors.splits.messages import RATE_LOOKUP, AddExpense, EditExpense, RecordSettlement
from splitgo.web.keys import SERVICES
from splitgo.web.splits.asking import json_path_problem

log = structlog.get_logger("splitgo.web.rates")

SPLITS = "splits"
Priced = TypeVar("Priced", AddExpense, EditExpense, RecordSettlement)


def lookup_of(error: DomainError) -> GetRate | None:
    """The rate the splits actor asked to be looked up, or None for any other refusal."""
    if not isinstance(error, RateUnavailable) or not error.details.get(RATE_LOOKUP):
        return None
    details = error.details
    try:
        return GetRate(base=details["base"], quote=details["quote"], day=details["day"])
    except (KeyError, DomainError, TypeError):  # not a lookup this code can make
        return None


def with_quote(message: Priced, quote: RateQuote) -> Priced:
    """`message` carrying the looked-up rate, where it came from and its own day."""
    return msgspec.structs.replace(
        message, rate=quote.rate, rate_source=quote.source, rate_day=quote.day
    )


async def ask_with_rate(
    system: ActorSystem, message: Priced, *, timeout: float | None = None
) -> Any:
    """Ask the splits actor; when it needs the day's rate, look it up and ask once more.

    Raises what the actors refuse: the rates actor's `rate_unavailable` when it has no
    rate for the pair and day, the splits actor's refusals as they are.
    """
    splits = system.ref(SPLITS)
    message = msgspec.structs.replace(message, rate_lookup=True)
    try:
        return await splits.ask(message, timeout=timeout)
    except DomainError as error:
        lookup = lookup_of(error)
        if lookup is None:
            raise
    quote: RateQuote = await system.ref(RATES).ask(lookup)
    log.info(
        "rate_looked_up",
        base=quote.base,
        quote=quote.quote,
        day=quote.day_asked,
        rate=quote.rate,
        source=quote.source,
    )
    return await splits.ask(with_quote(message, quote), timeout=timeout)


async def ask_priced(request: web.Request, message: Priced, *, timeout: float | None = None) -> Any:
    """`ask_with_rate` from a route: a refusal naming a body field names it as a JSON path,
    as `asking.ask_splits` does."""
    try:
        return await ask_with_rate(request.app[SERVICES].system, message, timeout=timeout)
    except DomainError as error:
        problem = json_path_problem(error)
        if problem is None:
            raise
        raise problem from None
