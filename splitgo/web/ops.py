"""Operator routes: actor status, dead letters and their replay, reviving a failed actor."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
import structlog
from aiohttp import web

from actors.runtime import DeadLetter, DomainError, ShardStatus, UnknownActor
from splitgo.web.declare import Derived, PageQuery, documented, page
from splitgo.web.keys import SERVICES
from splitgo.web.problems import FieldError, ProblemError, json_response, matching
from splitgo.web.security import authorize_operator

log = structlog.get_logger("splitgo.ops")
routes = web.RouteTableDef()

OpsHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def require_ops(handler: OpsHandler) -> OpsHandler:
    """Machines pass with the ops token; people with an admin's access token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        authorize_operator(request)
        return await handler(request)

    functools.update_wrapper(guarded, handler)  # its name, docstring and OpenAPI description
    return guarded


CURSOR_MAX = 200  # longer than any next_cursor we hand out


def page_params(request: web.Request) -> tuple[int, str | None]:
    """`?limit=` (1..200, default 50) and `?cursor=`, or a 422 naming the parameter."""
    raw = request.query.get("limit", "50")
    # isascii: "¹" is a digit to str.isdigit() but not to int()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 200:
        raise ProblemError(
            422,
            "validation_error",
            "limit must be a whole number from 1 to 200",
            errors=[FieldError(field="limit", message="a whole number from 1 to 200")],
        )
    cursor = request.query.get("cursor") or None
    if cursor is not None and (len(cursor) > CURSOR_MAX or not cursor.isprintable()):
        # no cursor we give out looks like this: the same answer as any cursor we did not
        raise ProblemError(
            422,
            "invalid_cursor",
            "this cursor was not given out by this list; start again without one",
            errors=[FieldError(field="cursor", message="a next_cursor this list gave out")],
        )
    return int(raw), cursor


def dead_letter_view(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as operators read it: the encoded envelope stays inside."""
    view = msgspec.structs.asdict(letter)
    envelope = view.pop("envelope")
    view["replayable"] = envelope is not None and letter.replayed_at is None
    return view


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Replay these dead letters by id, or every not-yet-replayed one of an actor type."""

    ids: list[str] | None = None
    actor: str | None = None


# ── what the routes answer (for the OpenAPI document) ─────────────────────────────────


class ActorsView(msgspec.Struct):
    node: str
    ready: bool
    actors: list[ShardStatus]
    # actor type -> its shards as the transport sees them (owner, lease, stream, lag...)
    cluster: dict[str, list[dict[str, Any]]]
    cluster_unavailable: dict[str, str]


DeadLetterView = Derived(
    "DeadLetterView",
    DeadLetter,
    drop=("envelope",),
    add={"replayable": bool},
    description="A message that could not be handled; `replayable` while it can be sent again.",
)


ACTOR_NAME = r"^[A-Za-z0-9_.:-]{1,100}$"


class DeadLetterQuery(PageQuery):
    actor: Annotated[
        str,
        matching(ACTOR_NAME, "an actor type's name", description="only this actor type's"),
    ] = ""


class Replayed(msgspec.Struct):
    replayed: list[str]


class ReplayFailure(msgspec.Struct):
    id: str
    code: str
    detail: str


class ReplayOutcome(msgspec.Struct):
    replayed: list[str]
    failed: list[ReplayFailure]


@routes.get("/ops/actors")
@documented(summary="Actors and shards", tags=["ops"], auth="ops", responses={200: ActorsView})
@require_ops
async def list_actors(request: web.Request) -> web.Response:
    """Local shards (state, counters, latency percentiles) and, cluster-wide, every shard's
    owner node, lease expiry, stream length, pending count and lag."""
    services = request.app[SERVICES]
    system = services.system
    cluster: dict[str, list[dict[str, Any]]] = {}
    unavailable: dict[str, str] = {}
    for name, shards in system.routes().items():
        try:
            cluster[name] = await system.transport.shard_info(name, shards)
        except Exception as error:
            # the operator's view must work while the transport flaps: say what is missing
            log.warning("shard_info_unavailable", actor=name, error=str(error))
            unavailable[name] = f"{type(error).__name__}: {error}"
    return json_response(
        {
            "node": services.node_id,
            "ready": system.ready,
            "actors": system.status(),
            "cluster": cluster,
            "cluster_unavailable": unavailable,
        }
    )


@routes.post("/ops/actors/{name}/restart")
@documented(summary="Revive an actor type", tags=["ops"], auth="ops", responses={204: None})
@require_ops
async def restart_actor(request: web.Request) -> web.Response:
    """Revive an actor type that its supervisor gave up on."""
    try:
        request.app[SERVICES].system.restart(request.match_info["name"])
    except UnknownActor as error:
        raise ProblemError(404, "unknown_actor", error.message) from None
    return web.Response(status=204)


@routes.get("/ops/dead-letters")
@documented(
    summary="Dead letters",
    tags=["ops"],
    auth="ops",
    query=DeadLetterQuery,
    responses={200: page(DeadLetterView)},
)
@require_ops
async def list_dead_letters(request: web.Request) -> web.Response:
    """Dead letters, newest first, `?actor=` to filter, paged by cursor."""
    limit, cursor = page_params(request)
    actor = request.query.get("actor") or None
    if actor is not None and not re.match(ACTOR_NAME, actor):
        # not a name an actor type can have (and a NUL would not even reach the database)
        raise ProblemError(
            422,
            "validation_error",
            "actor: the name of an actor type",
            errors=[FieldError(field="actor", message="letters, digits and _ . : -")],
        )
    store = request.app[SERVICES].system.dead_letters
    letters, next_cursor = await store.list(limit=limit, cursor=cursor, actor=actor)
    return json_response(
        {"items": [dead_letter_view(x) for x in letters], "next_cursor": next_cursor}
    )


@routes.get("/ops/dead-letters/{id}")
@documented(summary="One dead letter", tags=["ops"], auth="ops", responses={200: DeadLetterView})
@require_ops
async def get_dead_letter(request: web.Request) -> web.Response:
    letter_id = request.match_info["id"]
    letter = None
    if letter_id.isprintable():  # a NUL is in no id, and the database refuses to look
        letter = await request.app[SERVICES].system.dead_letters.get(letter_id)
    if letter is None:
        raise ProblemError(404, "dead_letter_not_found", "no dead letter with that id")
    return json_response(dead_letter_view(letter))


@routes.post("/ops/dead-letters/{id}/replay")
@documented(
    summary="Replay a dead letter",
    tags=["ops"],
    auth="ops",
    responses={202: Replayed},
    errors=[409],
)
@require_ops
async def replay_dead_letter(request: web.Request) -> web.Response:
    """Send the message again, once; a second replay is a 409."""
    letter = await request.app[SERVICES].system.replay(request.match_info["id"])
    return json_response({"replayed": [letter.id]}, status=202)


@routes.post("/ops/dead-letters/replay")
@require_ops
@documented(
    summary="Replay many dead letters",
    tags=["ops"],
    auth="ops",
    body=ReplayRequest,
    responses={202: ReplayOutcome},
)
async def replay_many(request: web.Request, body: ReplayRequest) -> web.Response:
    """Replay a list of dead letters, or all not-yet-replayed ones of one actor type."""
    if (body.ids is None) == (body.actor is None):
        raise ProblemError(
            422,
            "validation_error",
            "give either ids or actor",
            errors=[FieldError(field="$", message="exactly one of ids and actor is required")],
        )
    system = request.app[SERVICES].system
    ids = body.ids if body.ids is not None else await _replayable_ids(request, body.actor or "")
    replayed: list[str] = []
    failed: list[dict[str, Any]] = []
    for letter_id in ids:
        try:
            await system.replay(letter_id)
            replayed.append(letter_id)
        except DomainError as error:
            failed.append({"id": letter_id, "code": error.code, "detail": error.message})
    return json_response({"replayed": replayed, "failed": failed}, status=202)


async def _replayable_ids(request: web.Request, actor: str) -> list[str]:
    store = request.app[SERVICES].system.dead_letters
    ids: list[str] = []
    cursor: str | None = None
    while True:
        letters, cursor = await store.list(limit=200, cursor=cursor, actor=actor)
        ids += [x.id for x in letters if x.replayed_at is None and x.envelope is not None]
        if cursor is None:
            return ids
