"""The HTTP edge in process: problems, request ids, ops auth, dead letters over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.runtime import (
    Actor,
    ActorSystem,
    DomainError,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    handles,
)
from splitgo.web import Services, create_app
from splitgo.web.declare import Verbatim, documented
from splitgo.web.problems import STATUS_BY_CATEGORY, from_domain_error, json_response
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]

TOKEN = "unit-ops-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


class Poison(Message, frozen=True):
    note: str


class Fragile(Actor):
    fixed = False
    seen: list[str] = []

    @handles(Poison)
    async def poison(self, message: Poison) -> None:
        if not Fragile.fixed:
            raise ValueError("cannot digest")
        Fragile.seen.append(message.note)


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    codec = Codec()
    built = ActorSystem(
        MemoryTransport(node_id="web", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await built.start()
    built.spawn(Fragile, "fragile", policy=RestartPolicy(backoff_initial=0.001, backoff_max=0.002))
    yield built
    await built.stop(1.0)


class Note(msgspec.Struct, forbid_unknown_fields=True):
    text: str = "none"


declared = web.RouteTableDef()


@declared.post("/declared/optional")
@documented(
    summary="A body that may be left out",
    auth="none",
    actor=False,
    body=Note,
    body_required=False,
    responses={200: Note},
)
async def optional_note(request: web.Request, body: Note) -> web.Response:
    return json_response({"text": body.text})


@declared.post("/declared/bytes")
@documented(
    summary="The bytes as they came",
    auth="none",
    actor=False,
    body=Verbatim(dict[str, Any]),
    responses={200: dict[str, Any]},
)
async def raw_note(request: web.Request, body: bytes) -> web.Response:
    return json_response({"length": len(body)})


# what the fake database probe answers; each test starts healthy
PROBE = {"database": True}


@pytest.fixture
async def client(system: ActorSystem) -> AsyncIterator[Client]:
    PROBE["database"] = True

    async def database_probe() -> bool:
        return PROBE["database"]

    services = Services(
        system=system, node_id="web", ops_token=TOKEN, probes={"database": database_probe}
    )
    app = create_app(services, extra=[declared])
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def poisoned(system: ActorSystem, note: str) -> str:
    """Tell a poison message and wait until it is a dead letter; its id."""
    await system.ref("fragile").tell(Poison(note=note))
    for _ in range(500):
        letters, _ = await system.dead_letters.list(limit=200)
        match = [x for x in letters if note in bytes(x.body).decode()]
        if match:
            return match[0].id
        await asyncio.sleep(0.005)
    raise AssertionError("the poison message never reached the dead letters")


async def test_readyz_turns_503_when_a_probe_fails(client: Client) -> None:
    """Readiness follows the database probe: 200 while it answers, 503 with the failed check."""
    response = await client.get("/readyz")
    assert response.status == 200
    PROBE["database"] = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["database"] is False


async def test_ops_token_is_required_and_checked(client: Client) -> None:
    """No token and a wrong token are 401 problems with WWW-Authenticate; the right one passes."""
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await client.get("/ops/actors", headers=headers)
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert "Bearer" in response.headers["WWW-Authenticate"]
    response = await client.get("/ops/actors", headers=AUTH)
    body = await response.json()
    assert response.status == 200
    [shard] = body["actors"]
    assert shard["name"] == "fragile"
    assert shard["state"] == "running"
    assert set(shard) >= {
        "name", "shard", "node", "state", "mailbox", "handled", "failed", "restarts",
        "last_error", "p50_ms", "p99_ms",
    }  # fmt: skip


async def test_dead_letters_are_listed_and_replayed_over_http(
    client: Client, system: ActorSystem
) -> None:
    """A dead letter shows with its error and body, replays once (202), then is a 409."""
    Fragile.fixed, Fragile.seen = False, []
    letter_id = await poisoned(system, "first")
    response = await client.get("/ops/dead-letters", headers=AUTH)
    [item] = (await response.json())["items"]
    assert item["id"] == letter_id
    assert item["error"] == "ValueError: cannot digest"
    assert item["body"] == {"msg_type": "Poison", "note": "first"}
    assert item["replayable"] is True

    Fragile.fixed = True
    response = await client.post(f"/ops/dead-letters/{letter_id}/replay", headers=AUTH)
    assert response.status == 202
    response = await client.post(f"/ops/dead-letters/{letter_id}/replay", headers=AUTH)
    assert response.status == 409
    assert (await response.json())["code"] == "dead_letter_already_replayed"
    response = await client.post("/ops/dead-letters/nope/replay", headers=AUTH)
    assert response.status == 404


async def test_bulk_replay_by_actor(client: Client, system: ActorSystem) -> None:
    """Replaying by actor sends every not-yet-replayed dead letter of that type."""
    Fragile.fixed, Fragile.seen = False, []
    await poisoned(system, "a")
    await poisoned(system, "b")
    Fragile.fixed = True
    response = await client.post(
        "/ops/dead-letters/replay", json={"actor": "fragile"}, headers=AUTH
    )
    assert response.status == 202
    assert len((await response.json())["replayed"]) == 2
    response = await client.post(
        "/ops/dead-letters/replay", json={"ids": [], "actor": "fragile"}, headers=AUTH
    )
    assert response.status == 422


async def test_list_limit_is_validated(client: Client) -> None:
    """A limit outside 1..200 is a 422 naming `limit`; a foreign cursor (one with a NUL or
    longer than any we give out, too) is 422 `invalid_cursor`."""
    for bad in ("0", "201", "ten", "-1"):
        response = await client.get(f"/ops/dead-letters?limit={bad}", headers=AUTH)
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "limit"
    for cursor in ("%%%", "a%00b", "x" * 201):
        response = await client.get(f"/ops/dead-letters?cursor={cursor}", headers=AUTH)
        assert response.status == 422
        assert (await response.json())["code"] == "invalid_cursor", cursor


async def test_wrong_content_type_and_empty_body(client: Client) -> None:
    """A non-JSON content type is a 415, an empty body a 400, unknown fields a 422."""
    url = "/ops/dead-letters/replay"
    response = await client.post(url, data=b"ids=1", headers={**AUTH, "Content-Type": "text/plain"})
    assert response.status == 415
    response = await client.post(
        url, data=b"", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 400
    response = await client.post(url, json={"idz": ["x"]}, headers=AUTH)
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "$"


async def test_oversized_body_is_a_413_problem(client: Client) -> None:
    """A body past the limit is refused as a problem, not read into memory."""
    response = await client.post(
        "/ops/dead-letters/replay",
        data=b"[" + b"0," * 600_000 + b"0]",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert response.content_type == "application/problem+json"


async def test_the_caller_is_admitted_before_the_body_is_read(client: Client) -> None:
    """A route's declared caller is checked first: no token is a 401 whatever the body."""
    for url in ("/ops/dead-letters/replay", "/api/v1/groups"):
        response = await client.post(url, data=b"{not json", headers=JSON)
        assert response.status == 401, url
        assert response.content_type == "application/problem+json"
    response = await client.post(
        "/ops/dead-letters/replay", data=b"{not json", headers={**AUTH, **JSON}
    )
    assert response.status == 400
    assert (await response.json())["code"] == "malformed_json"


async def test_a_declared_body_is_handed_over_decoded_or_as_bytes(client: Client) -> None:
    """An optional body may be left out (its defaults), is decoded when sent, and is a 422
    naming the field when it does not fit; a Verbatim body arrives as the bytes sent."""
    response = await client.post("/declared/optional")
    assert (response.status, await response.json()) == (200, {"text": "none"})
    response = await client.post("/declared/optional", json={"text": "hi"})
    assert (response.status, await response.json()) == (200, {"text": "hi"})
    response = await client.post("/declared/optional", json={"text": 5})
    assert response.status == 422
    assert (await response.json())["errors"][0]["field"] == "$.text"
    response = await client.post("/declared/bytes", data=b"not even json")
    assert (response.status, await response.json()) == (200, {"length": 13})


def test_every_category_maps_to_a_status() -> None:
    """Each domain error category becomes its HTTP status, and the field travels along."""

    class Overdrawn(DomainError):
        code = "unit_overdrawn"
        category = "invalid"

    problem = from_domain_error(Overdrawn("not enough money", details={"field": "$.amount"}))
    assert (problem.status, problem.code) == (422, "unit_overdrawn")
    assert problem.errors[0].field == "$.amount"
    assert STATUS_BY_CATEGORY["conflict"] == 409
    assert STATUS_BY_CATEGORY["not_found"] == 404
