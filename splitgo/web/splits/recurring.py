"""Recurring expenses (their end, the active ones, stopping one) and settling choices: a
group's simplify switch, everything with one person at once (issue 17, items 5 and 6).

Settling with one person across groups (`POST /api/v1/people/{user_id}/settle`) is led
here: the caller's part of each group's settle plan that pays that person is recorded in
that group by its own shard. With `cash` each is a cash settlement. With `wallet` each is
first prepared (pending, its amount fixed), then ONE wallet transfer per currency moves
the total, then each is finished with that transfer's id (or its failure, balances
untouched). Every id is derived from the caller, the person and the Idempotency-Key, so a
retry with the same key finds what the first request began and finishes only that (the
transfer's own key makes payments answer the first transfer): nothing is paid twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from actors.auth.messages import GetUser
from actors.payments.messages import Transfer, TransferView, format_money
from actors.runtime import DomainError
from actors.splits.messages import (
    RECURRENCE_TIMES_MAX,
    FinishSettlement,
    GetBalances,
    GetGroupSettings,
    GetSettlement,
    GetSettlePlan,
    GroupSettings,
    ListGroups,
    ListRecurring,
    PrepareSettlement,
    RecordSettlement,
    RecurringList,
    RecurringView,
    SetRecurrenceEnd,
    SetSimplify,
    SettlementNotFound,
    SettlementView,
    StopRecurring,
)
from splitgo.web.actors import ask, find_user
from splitgo.web.declare import documented, idempotency
from splitgo.web.idempotency import required_key
from splitgo.web.keys import SERVICES
from splitgo.web.payments import field_problem
from splitgo.web.problems import ProblemError, from_domain_error, json_response, to_json
from splitgo.web.security import authenticate
from splitgo.web.splits.asking import ask_splits, group_id
from splitgo.web.splits.bodies import Day
from splitgo.web.splits.settlements import SETTLEMENT_ASK_TIMEOUT

routes = web.RouteTableDef()

Times = Annotated[int, msgspec.Meta(ge=1, le=RECURRENCE_TIMES_MAX)]


class RecurrenceEndBody(msgspec.Struct, forbid_unknown_fields=True):
    """A recurring expense's end: a last day for a copy, or how many dates in all (the
    original included); neither: it repeats until stopped."""

    until: Day | None = None
    times: Times | None = None


class SettingsPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A group's settings: `simplify` true for the fewest transfers, false for who owes
    whom directly."""

    simplify: bool


class PersonSettleBody(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["cash", "wallet"]


class PaidTransfer(msgspec.Struct, frozen=True):
    """One wallet transfer that paid the person, for every group in its currency."""

    id: str
    amount: int
    currency: str


class PersonSettlement(msgspec.Struct, frozen=True):
    """What settling everything with one person recorded: a settlement per group and
    currency, and (with `wallet`) one transfer per currency that paid them all."""

    user_id: str
    method: str
    settlements: list[SettlementView]
    transfers: list[PaidTransfer]


def expense_id(request: web.Request) -> str:
    return request.match_info["eid"]


# ── recurring ──────────────────────────────────────────────────────────────────────────


@routes.get("/api/v1/groups/{id}/recurring")
@documented(
    summary="The group's active recurring expenses",
    description="Each with its next date, its end (`until` or `times`, the original "
    "included), the copies it made and how many are left (`remaining`: null when it has "
    "no end), soonest first. A stopped or finished series is not listed.",
    tags=["splits"],
    responses={200: RecurringList},
)
async def list_recurring(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(request, ListRecurring(group_id=group_id(request), user_id=claims.sub))
    return json_response(to_json(view))


@routes.post("/api/v1/groups/{id}/recurring/{eid}/stop")
@documented(
    summary="Stop a recurring expense",
    description="No more copies; the copies made stay. Stopping it again changes nothing.",
    tags=["splits"],
    responses={200: RecurringView},
)
async def stop_recurring(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(
        request,
        StopRecurring(
            group_id=group_id(request), user_id=claims.sub, expense_id=expense_id(request)
        ),
    )
    return json_response(to_json(view))


@routes.put("/api/v1/groups/{id}/recurring/{eid}/end")
@documented(
    summary="End a recurring expense on a day or after a number of times",
    description="`until`: no copy is dated after it; `times`: the original and its copies "
    "in all; not both (422). `{}` removes the end. An expense that does not repeat: 422.",
    tags=["splits"],
    body=RecurrenceEndBody,
    responses={200: RecurringView},
)
async def set_end(request: web.Request, body: RecurrenceEndBody) -> web.Response:
    claims = authenticate(request)
    if body.until is not None and body.times is not None:
        raise field_problem("$.times", "give until or times, not both")
    view = await ask_splits(
        request,
        SetRecurrenceEnd(
            group_id=group_id(request),
            user_id=claims.sub,
            expense_id=expense_id(request),
            until=body.until,
            times=body.times,
        ),
    )
    return json_response(to_json(view))


# ── the simplify switch ────────────────────────────────────────────────────────────────


@routes.get("/api/v1/groups/{id}/settings")
@documented(
    summary="The group's settings",
    description="`simplify`: the settle plan is the fewest transfers (true, the default) "
    "or who owes whom directly (false).",
    tags=["splits"],
    responses={200: GroupSettings},
)
async def settings(request: web.Request) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(
        request, GetGroupSettings(group_id=group_id(request), user_id=claims.sub)
    )
    return json_response(to_json(view))


@routes.patch("/api/v1/groups/{id}/settings")
@documented(
    summary="Switch the group's settle plan",
    description="`simplify: false`: each member pays back the people who paid for them "
    "(one transfer per pair); `true`: the fewest transfers. Any member may switch it; the "
    "activity says who did.",
    tags=["splits"],
    body=SettingsPatch,
    responses={200: GroupSettings},
    errors=[409],
)
async def patch_settings(request: web.Request, body: SettingsPatch) -> web.Response:
    claims = authenticate(request)
    view = await ask_splits(
        request,
        SetSimplify(group_id=group_id(request), user_id=claims.sub, simplify=body.simplify),
    )
    return json_response(to_json(view))


# ── everything with one person ─────────────────────────────────────────────────────────


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


async def _owed_to(
    request: web.Request, me: str, person: str, batch: str
) -> tuple[list[SettlementView], list[tuple[str, str, int, str]]]:
    """(what a first request with this key recorded already, what the plans say I owe
    `person` now: (group, currency, amount, settlement id))."""
    found: list[SettlementView] = []
    owed: list[tuple[str, str, int, str]] = []
    listed = await ask_splits(request, ListGroups(user_id=me))
    for group in listed.groups:
        plan = await ask_splits(request, GetSettlePlan(group_id=group.id, user_id=me))
        balances = await ask_splits(request, GetBalances(group_id=group.id, user_id=me))
        mine = {line.currency for line in balances.balances if line.user_id == me}
        due: dict[str, int] = defaultdict(int)
        for t in plan.transfers:
            if t.from_user_id == me and t.to_user_id == person:
                due[t.currency] += t.amount
        for currency in sorted(mine | set(due)):
            sid = f"ps-{batch}-{_digest(group.id, currency)[:16]}"
            try:
                found.append(
                    await ask_splits(
                        request, GetSettlement(group_id=group.id, user_id=me, settlement_id=sid)
                    )
                )
            except SettlementNotFound:
                if due.get(currency):
                    owed.append((group.id, currency, due[currency], sid))
    return found, owed


@routes.post("/api/v1/people/{user_id}/settle")
@documented(
    summary="Settle everything you owe one person, across groups",
    description="For each group where the settle plan has you pay them, a settlement of "
    "that amount. `cash`: recorded at once. `wallet`: ONE wallet transfer per currency "
    "pays the total, and each group's settlement references it; not enough in the wallet: "
    "422 `insufficient_funds` and nothing is settled. Nothing owed to them: 422 "
    "`nothing_owed`. An Idempotency-Key is required: a retry with it finishes what the "
    "first request began and pays nothing twice.",
    tags=["splits"],
    body=PersonSettleBody,
    headers=[idempotency(required=True)],
    responses={201: PersonSettlement},
    errors=[409],
)
async def settle_with_person(request: web.Request, body: PersonSettleBody) -> web.Response:
    claims = authenticate(request)
    done = await settle_all(
        request, claims.sub, request.match_info["user_id"], required_key(request), body.method
    )
    return json_response(to_json(done), status=201)


async def settle_all(
    request: web.Request, me: str, person: str, key: str, method: str
) -> PersonSettlement:
    """Settle what `me` owes `person` in every group they share (the route's and the home
    page's form's), or a problem: `nothing_owed`, `no_account`, the transfer's refusal."""
    if person == me:
        raise field_problem("user_id", "settling pays someone else")
    batch = _digest(me, person, key)[:32]
    found, owed = await _owed_to(request, me, person, batch)
    if found:
        owed = []  # a retry: finish what the first request began, start nothing new
    if not found and not owed:
        raise ProblemError(422, "nothing_owed", "You owe them nothing in any group you share.")
    if method == "wallet" and not found:
        system = request.app[SERVICES].system
        if await find_user(system, GetUser(user_id=person)) is None:
            raise ProblemError(
                422,
                "no_account",
                "They have no account yet, so no wallet: settle in cash instead.",
            )
    if method == "cash":
        recorded = [
            await ask_splits(
                request,
                RecordSettlement(
                    group_id=gid,
                    user_id=me,
                    settlement_id=sid,
                    to_user_id=person,
                    amount=amount,
                    currency=currency,
                    method="cash",
                ),
            )
            for gid, currency, amount, sid in owed
        ]
        return _result(person, "cash", found + recorded, [])
    prepared = found + [
        await ask_splits(
            request,
            PrepareSettlement(
                group_id=gid,
                user_id=me,
                settlement_id=sid,
                to_user_id=person,
                amount=amount,
                currency=currency,
            ),
        )
        for gid, currency, amount, sid in owed
    ]
    views, transfers = await _pay(request, me, person, batch, prepared)
    failed = next((v for v in views if v.status == "failed"), None)
    if failed is not None:
        raise ProblemError(
            422,
            failed.failure_code or "settlement_failed",
            failed.failure_message or "the wallet transfer did not go through",
        )
    return _result(person, "wallet", views, transfers)


async def owed_by_group(request: web.Request, me: str, person: str) -> list[dict[str, object]]:
    """What the settle plans say `me` pays `person` now: {group_id, group_name, currency,
    amount} per group and currency (what `settle_all` would settle)."""
    owed: list[dict[str, object]] = []
    listed = await ask_splits(request, ListGroups(user_id=me))
    for group in listed.groups:
        plan = await ask_splits(request, GetSettlePlan(group_id=group.id, user_id=me))
        due: dict[str, int] = defaultdict(int)
        for t in plan.transfers:
            if t.from_user_id == me and t.to_user_id == person:
                due[t.currency] += t.amount
        owed += [
            {"group_id": group.id, "group_name": group.name, "currency": c, "amount": n}
            for c, n in sorted(due.items())
        ]
    return owed


async def _pay(
    request: web.Request, me: str, person: str, batch: str, prepared: list[SettlementView]
) -> tuple[list[SettlementView], list[PaidTransfer]]:
    """One transfer per currency for the pending settlements, then each finished."""
    pending: dict[str, list[SettlementView]] = defaultdict(list)
    for view in prepared:
        if view.status == "pending":
            pending[view.currency].append(view)
    done = {view.id: view for view in prepared}
    transfers: list[PaidTransfer] = []
    for currency, views in sorted(pending.items()):
        total = sum(view.amount for view in views)
        transfer = Transfer(
            idempotency_key=f"people-settle:{batch}:{currency}",
            from_user_id=me,
            to_user_id=person,
            amount=total,
            currency=currency,
            note=f"Settle up in {len(views)} group(s): {format_money(total, currency)}"[:200],
            kind="settlement",
            reference=f"people:{person}:{batch}",
        )
        try:
            paid: TransferView = await ask(request, "payments", transfer)
        except DomainError as error:
            problem = from_domain_error(error)
            for view in views:
                done[view.id] = await ask_splits(
                    request,
                    FinishSettlement(
                        group_id=view.group_id,
                        user_id=me,
                        settlement_id=view.id,
                        failure_code=error.code,
                        failure_message=problem.detail[:500],
                    ),
                )
            continue
        transfers.append(PaidTransfer(id=paid.id, amount=paid.amount, currency=currency))
        for view in views:
            done[view.id] = await ask_splits(
                request,
                FinishSettlement(
                    group_id=view.group_id, user_id=me, settlement_id=view.id, transfer_id=paid.id
                ),
                timeout=SETTLEMENT_ASK_TIMEOUT,
            )
    return list(done.values()), transfers


def _result(
    person: str, method: str, views: list[SettlementView], transfers: list[PaidTransfer]
) -> PersonSettlement:
    views = sorted(views, key=lambda v: (v.currency, v.group_id))
    return PersonSettlement(user_id=person, method=method, settlements=views, transfers=transfers)
