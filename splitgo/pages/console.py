"""Pages: the operator console, for signed-in people with the `admin` role (anyone else
gets a 403 page; the navigation shows Console to admins only).

- `/console` — this node's actor shards (state, mailbox, handled per second, p50/p99,
  restarts), refreshed live by static/console.js from the fragment `/console/shards`
  (a Refresh link without JavaScript); an actor type its supervisor gave up on can be
  restarted after a confirmation (a native <dialog>, or a confirmation page).
- `/console/dead-letters` — dead letters, newest first, by actor type; one inspected at
  `/console/dead-letters/{id}` (its message pretty-printed); replay one, or many picked
  with checkboxes after a confirmation naming how many.
- `/console/deliveries` — notification deliveries by status, with the person's name.

Every read and action goes through what the `/ops` JSON routes use (splitgo/web/ops.py):
the actor system's `status()`, `restart()`, `replay()` and dead-letter store, and the
notifications actor's `ListDeliveries`. Handled-per-second is measured here, from the
shard counters seen on earlier looks (`ShardRates`).
"""

from __future__ import annotations

import functools
import json
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from actors.notifications.messages import DeliveryList, ListDeliveries
from actors.runtime import ActorSystem, DeadLetter, DomainError, ShardStatus, UnknownActor
from actors.runtime.dead_letters import (
    DeadLetterAlreadyReplayed,
    DeadLetterNotFound,
    DeadLetterNotReplayable,
)
from splitgo.pages.cookies import FLASHES, flash
from splitgo.pages.forms import REFUSALS, Form, read_form
from splitgo.pages.guards import Page, ViewerPage, local_target, signed_in
from splitgo.pages.render import named, redirect, render
from splitgo.pages.sessions import Viewer
from splitgo.web.actors import ask
from splitgo.web.keys import SERVICES
from splitgo.web.ops import ReplayRequest, dead_letter_view, page_params
from splitgo.web.problems import ProblemError
from splitgo.web.security import authenticate, require_second_factor

log = structlog.get_logger("splitgo.pages.console")
routes = web.RouteTableDef()

HOME = "/console"
DEAD_LETTERS = "/console/dead-letters"
DELIVERIES = "/console/deliveries"
STATUSES = ("pending", "sent", "failed")  # what GET /ops/notifications/deliveries filters by
DELIVERIES_SHOWN = 100
NO_SUCH_ACTOR = "No actor type of that name runs on this node."
NO_SUCH_LETTER = "There is no dead letter at this address."
CONFIRMED = "yes"  # the `confirmed` input of a bulk replay that was confirmed

FLASHES.update(
    {
        "actor_restarted": "The actor type is starting again.",
        "dead_letter_replayed": "The dead letter was sent again.",
        "dead_letters_replayed": "The dead letters were sent again.",
        "dead_letters_partly_replayed": (
            "Some dead letters were not sent again: they had been replayed already or "
            "cannot be replayed. The others were sent."
        ),
        "dead_letter_already_replayed": "That dead letter had been replayed already.",
        "dead_letter_not_replayable": (
            "That dead letter cannot be replayed: its message held a secret, so it was not kept."
        ),
    }
)


# ── who may look ─────────────────────────────────────────────────────────────────────


def admins_only(handler: ViewerPage) -> Page:
    """A console page: signed-in admins get it, other people a 403 page, nobody a sign-in."""

    @functools.wraps(handler)
    async def page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        if not viewer.is_admin:
            raise ProblemError(
                403,
                "not_an_admin",
                "The console is for admins. Ask an admin if you need to see it.",
            )
        require_second_factor(request, authenticate(request))  # issue 19: two factors
        return await handler(request, viewer)

    return signed_in(page)


# ── handled per second ───────────────────────────────────────────────────────────────


ShardKey = tuple[str, str, int]  # node, actor type, shard


@dataclass
class ShardRates:
    """Messages handled per second by each shard, over about the last `window` seconds:
    each look at the shards keeps their counters, and a rate is the change since the
    oldest look within the window (None on the first look at a shard)."""

    window: float = 5.0
    seen: dict[ShardKey, deque[tuple[float, int]]] = field(default_factory=dict)

    def measure(self, shards: list[ShardStatus], now: float) -> dict[ShardKey, float | None]:
        rates: dict[ShardKey, float | None] = {}
        for shard in shards:
            key = (shard.node, shard.name, shard.shard)
            samples = self.seen.setdefault(key, deque())
            if samples and samples[-1][1] > shard.handled:
                samples.clear()  # counted from zero again
            # keep one look older than the window as the base, drop the ones before it
            while len(samples) > 1 and samples[1][0] <= now - self.window:
                samples.popleft()
            rate: float | None = None
            if samples and now - samples[0][0] >= 0.5:
                rate = (shard.handled - samples[0][1]) / (now - samples[0][0])
            samples.append((now, shard.handled))
            rates[key] = rate
        return rates


_RATES: weakref.WeakKeyDictionary[ActorSystem, ShardRates] = weakref.WeakKeyDictionary()


def rates_of(system: ActorSystem) -> ShardRates:
    """The rates measured for this node's actor system (one per system in a process)."""
    rates = _RATES.get(system)
    if rates is None:
        rates = _RATES[system] = ShardRates()
    return rates


# ── shards ───────────────────────────────────────────────────────────────────────────


def shard_rows(system: ActorSystem) -> list[dict[str, Any]]:
    """This node's shards as the table shows them, ordered by actor type and shard."""
    shards = sorted(system.status(), key=lambda s: (s.name, s.shard))
    rates = rates_of(system).measure(shards, time.monotonic())
    return [
        {
            "name": shard.name,
            "shard": shard.shard,
            "node": shard.node,
            "state": shard.state,
            "mailbox": shard.mailbox,
            "parked": shard.parked,
            "rate": rates[(shard.node, shard.name, shard.shard)],
            "p50_ms": shard.p50_ms,
            "p99_ms": shard.p99_ms,
            "restarts": shard.restarts,
            "failed": shard.failed,
            "dead_lettered": shard.dead_lettered,
            "last_error": shard.last_error,
        }
        for shard in shards
    ]


def shards_context(request: web.Request) -> dict[str, Any]:
    """What the shards table (the page and its fragment) shows."""
    services = request.app[SERVICES]
    rows = shard_rows(services.system)
    types = sorted({row["name"] for row in rows})
    return {
        "node": services.node_id,
        "ready": services.system.ready,
        "rows": rows,
        "types": types,
        "failed_types": sorted({row["name"] for row in rows if row["state"] == "failed"}),
        "updated_at": time.strftime("%H:%M:%S UTC", time.gmtime()),
    }


@routes.get(HOME)
@admins_only
async def console(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    context = {"title": "Console", "section": "console", "tab": "shards"}
    return await render(request, "console.html", {**context, **shards_context(request)})


@routes.get(HOME + "/shards")
@admins_only
async def shards_fragment(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The shards table alone, for static/console.js to swap in."""
    return await render(request, "console_shards.html", shards_context(request))


def known_actor(request: web.Request, name: str) -> str:
    """`name` when this node hosts that actor type, else a 404 page."""
    if name not in request.app[SERVICES].system.hosted():
        raise ProblemError(404, "unknown_actor", NO_SUCH_ACTOR)
    return name


@routes.get(HOME + "/actors/{name}/restart")
@admins_only
async def confirm_restart(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Without JavaScript: the confirmation step before a restart."""
    name = known_actor(request, request.match_info["name"])
    return await render(
        request,
        "console_confirm.html",
        {
            "title": f"Restart {name}?",
            "section": "console",
            "action": f"{HOME}/actors/{name}/restart",
            "text": (
                f"Every stopped shard of {name} starts again, with fresh restart limits. "
                "Do it once the cause of its failures is fixed."
            ),
            "confirm": f"Restart {name}",
            "working": "Restarting…",
            "danger": True,
            "back": HOME,
            "ids": [],
            "letters": [],
        },
    )


@routes.post(HOME + "/actors/{name}/restart")
@admins_only
async def restart(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Revive an actor type, as POST /ops/actors/{name}/restart does."""
    await read_form(request)
    name = known_actor(request, request.match_info["name"])
    try:
        request.app[SERVICES].system.restart(name)
    except UnknownActor:  # gone since known_actor looked: the same page
        raise ProblemError(404, "unknown_actor", NO_SUCH_ACTOR) from None
    log.info("console_actor_restarted", actor=name, user_id=viewer.user_id)
    flash(request, "actor_restarted")
    return redirect(HOME)


# ── dead letters ─────────────────────────────────────────────────────────────────────


def letter_view(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as /ops/dead-letters shows it, with its time as RFC 3339 text."""
    view = dead_letter_view(letter)
    view["created_at"] = letter.created_at.isoformat()
    view["replayed_at"] = letter.replayed_at.isoformat() if letter.replayed_at else None
    return view


async def dead_letters_page(
    request: web.Request, form: Form, *, status: int = 200
) -> web.StreamResponse:
    """The list of dead letters (`?actor=`, `?cursor=`), with `form`'s refusal if any."""
    limit, cursor = page_params(request)
    system = request.app[SERVICES].system
    actor = request.query.get("actor") or None
    types = sorted(system.routes())
    if actor is not None and actor not in types:
        raise ProblemError(404, "unknown_actor", "No actor type of that name is known here.")
    letters, next_cursor = await system.dead_letters.list(limit=limit, cursor=cursor, actor=actor)
    older = None
    if next_cursor is not None:
        older = DEAD_LETTERS + "?" + urlencode({"actor": actor or "", "cursor": next_cursor})
    return await render(
        request,
        "console_dead_letters.html",
        {
            "title": "Dead letters",
            "section": "console",
            "tab": "dead_letters",
            "letters": [letter_view(letter) for letter in letters],
            "choices": [(name, name) for name in types],
            "actor": actor,
            "older": older,
            "here": request.path_qs if request.method == "GET" else DEAD_LETTERS,
            "form": form,
        },
        status=status,
    )


@routes.get(DEAD_LETTERS)
@admins_only
async def dead_letters(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await dead_letters_page(request, Form.blank())


async def find_letter(request: web.Request, letter_id: str) -> DeadLetter:
    """The dead letter of that id, or a 404 page."""
    letter = None
    if letter_id.isprintable():  # a NUL is in no id, and the database refuses to look
        letter = await request.app[SERVICES].system.dead_letters.get(letter_id)
    if letter is None:
        raise ProblemError(404, "dead_letter_not_found", NO_SUCH_LETTER)
    return letter


def pretty(body: bytes) -> str:
    """A dead letter's message (JSON) indented for reading; as it is when not JSON."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return body.decode("utf-8", "replace")


@routes.get(DEAD_LETTERS + "/{id}")
@admins_only
async def dead_letter(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    letter = await find_letter(request, request.match_info["id"])
    return await render(
        request,
        "console_dead_letter.html",
        {
            "title": f"{letter.message_type} to {letter.actor}",
            "section": "console",
            "tab": "dead_letters",
            "letter": letter_view(letter),
            "body": pretty(bytes(letter.body)),
            "here": request.path,
        },
    )


@routes.post(DEAD_LETTERS + "/{id}/replay")
@admins_only
async def replay_one(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Send one dead letter again, as POST /ops/dead-letters/{id}/replay does."""
    form = await read_form(request)
    letter_id = request.match_info["id"]
    back = local_target(form.value("next"), DEAD_LETTERS)
    try:
        await request.app[SERVICES].system.replay(letter_id)
    except DeadLetterNotFound:
        raise ProblemError(404, "dead_letter_not_found", NO_SUCH_LETTER) from None
    except DeadLetterAlreadyReplayed:
        flash(request, "dead_letter_already_replayed")
        return redirect(back)
    except DeadLetterNotReplayable:
        flash(request, "dead_letter_not_replayable")
        return redirect(back)
    log.info("console_dead_letter_replayed", dead_letter_id=letter_id, user_id=viewer.user_id)
    flash(request, "dead_letter_replayed")
    return redirect(back)


@routes.post(DEAD_LETTERS + "/replay")
@admins_only
async def replay_many(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Replay the picked dead letters, as POST /ops/dead-letters/replay with `ids` does:
    first a confirmation naming how many (the page's <dialog> with JavaScript, else a
    confirmation page), then each one sent again."""
    form = await read_form(request)
    try:
        body = form.parse(ReplayRequest, lists=["ids"])
    except REFUSALS as error:
        form.refuse(error, inputs={"$.ids": None})
        return await dead_letters_page(request, form, status=form.status)
    ids = list(dict.fromkeys(body.ids or []))  # each once, in the order picked
    if not ids:
        form.summary.append("Pick the dead letters to replay, then press Replay selected.")
        return await dead_letters_page(request, form, status=422)
    if form.value("confirmed") != CONFIRMED:
        return await confirm_replay(request, ids)
    system = request.app[SERVICES].system
    replayed: list[str] = []
    failed: list[str] = []
    for letter_id in ids:
        try:
            await system.replay(letter_id)
            replayed.append(letter_id)
        except DomainError as error:
            failed.append(letter_id)
            log.info("console_replay_refused", dead_letter_id=letter_id, code=error.code)
    log.info(
        "console_dead_letters_replayed",
        replayed=len(replayed),
        failed=len(failed),
        user_id=viewer.user_id,
    )
    flash(request, "dead_letters_partly_replayed" if failed else "dead_letters_replayed")
    return redirect(DEAD_LETTERS)


async def confirm_replay(request: web.Request, ids: list[str]) -> web.StreamResponse:
    """The confirmation step of a bulk replay, naming how many and which."""
    store = request.app[SERVICES].system.dead_letters
    letters = []
    for letter_id in ids[:200]:
        letter = await store.get(letter_id) if letter_id.isprintable() else None
        if letter is not None:
            letters.append(letter_view(letter))
    count = len(ids)
    words = "1 dead letter" if count == 1 else f"{count} dead letters"
    return await render(
        request,
        "console_confirm.html",
        {
            "title": f"Replay {words}?",
            "section": "console",
            "action": DEAD_LETTERS + "/replay",
            "text": (
                "Each message is sent again to its actor, once. Replay only after the cause "
                "of the failure is fixed."
            ),
            "confirm": f"Replay {words}",
            "working": "Replaying…",
            "danger": False,
            "back": DEAD_LETTERS,
            "ids": ids,
            "letters": letters,
        },
    )


# ── deliveries ───────────────────────────────────────────────────────────────────────


@routes.get(DELIVERIES)
@admins_only
async def deliveries(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Notification deliveries (`?status=`), as GET /ops/notifications/deliveries."""
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ProblemError(422, "validation_error", "Show pending, sent or failed deliveries.")
    found: DeliveryList = await ask(
        request,
        "notifications",
        ListDeliveries(status=status, limit=DELIVERIES_SHOWN),
    )
    listed = await named(request, found)
    return await render(
        request,
        "console_deliveries.html",
        {
            "title": "Deliveries",
            "section": "console",
            "tab": "deliveries",
            "deliveries": listed["items"],
            "status": status,
            "choices": [(value, value.capitalize()) for value in STATUSES],
            "shown": DELIVERIES_SHOWN,
        },
    )
