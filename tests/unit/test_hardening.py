"""The edge's guards in process: body limits, JSON limits, security headers, CORS, rate
limits, client addresses, secrets only from the environment, and database outages as 503."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actors.runtime import (
    Actor,
    ActorSystem,
    DatabaseUnavailable,
    HandlerFailed,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    handles,
)
from actors.runtime.errors import database_down
from splitgo.config import OPTIONS, SECRET_FIELDS, ConfigError, add_flags, load, refuse_unsafe
from splitgo.web import Services, create_app
from splitgo.web.declare import documented
from splitgo.web.hardening import (
    API_CSP,
    DOCS_CSP,
    HTML_CSP,
    RATE_LIMITED,
    ClientAddress,
    Hardening,
    RateLimiter,
)
from splitgo.web.problems import (
    MAX_JSON_DEPTH,
    MAX_JSON_ITEMS,
    MAX_JSON_STRING,
    from_domain_error,
    json_response,
)
from transport import Codec, MemoryTransport

Client = TestClient[web.Request, web.Application]
JSON = {"Content-Type": "application/json"}


# ── secrets and start-up refusals ──────────────────────────────────────────────────────


def test_secrets_have_no_command_line_flag() -> None:
    """A secret on a command line is visible to every user (ps): secrets are environment only."""
    by_field = {field: (env, flag) for env, flag, field, _help in OPTIONS}
    assert set(by_field) >= SECRET_FIELDS, "every secret field is a known option"
    for field in SECRET_FIELDS:
        env, flag = by_field[field]
        assert flag is None, f"{env} is a secret and must not have a flag"
    # and anything that sounds like a secret is declared one
    for env, _flag, field, _help in OPTIONS:
        if any(word in field for word in ("secret", "password", "token", "key", "_url")):
            sounds_public = field.endswith(("_base_url", "_api_url", "public_url")) or field in (
                "telegram_bot_username",
                "sms_webhook_url",
                "otel_endpoint",
                "rates_url",  # a public feed's address (the ECB's)
                "password_hashing",  # which cost profile, not a password
            )
            assert field in SECRET_FIELDS or sounds_public, f"is {env} a secret?"
    parser = argparse.ArgumentParser()
    add_flags(parser)
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert not any("secret" in flag or "token" in flag or "key" in flag for flag in flags)


def test_an_external_database_needs_explicit_signing_keys() -> None:
    """SPLITGO_DATABASE_URL without SPLITGO_JWT_KEYS refuses to start, naming the variable."""
    with pytest.raises(ConfigError, match="SPLITGO_JWT_KEYS"):
        refuse_unsafe(load({"SPLITGO_DATABASE_URL": "postgresql://db.example/splitgo"}))
    refuse_unsafe(load({}))  # the embedded default generates one: fine
    refuse_unsafe(
        load(
            {
                "SPLITGO_DATABASE_URL": "postgresql://db.example/splitgo",
                "SPLITGO_JWT_KEYS": "k1:" + "s" * 40,
            }
        )
    )
    # the ops token stays optional: a generated one is random and guards one node's /ops
    refuse_unsafe(
        load({"SPLITGO_DATABASE_URL": "postgresql://x/y", "SPLITGO_JWT_KEYS": "k1:" + "s" * 40})
    )


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SPLITGO_CORS_ORIGINS", "https://app.example/path", "SPLITGO_CORS_ORIGINS"),
        ("SPLITGO_CORS_ORIGINS", "app.example", "SPLITGO_CORS_ORIGINS"),
        ("SPLITGO_RATE_LIMIT", "-1", "SPLITGO_RATE_LIMIT"),
        ("SPLITGO_RATE_LIMIT", "lots", "SPLITGO_RATE_LIMIT"),
        ("SPLITGO_TRUSTED_PROXIES", "10.0.0.0/33", "SPLITGO_TRUSTED_PROXIES"),
        ("SPLITGO_OTEL_ENDPOINT", "collector:4318", "SPLITGO_OTEL_ENDPOINT"),
    ],
)
def test_bad_guard_settings_name_the_variable(variable: str, value: str, named: str) -> None:
    """A malformed CORS origin, rate limit, trusted-proxy network or OTLP endpoint fails config
    loading with an error naming the variable."""
    with pytest.raises(ConfigError, match=named):
        load({variable: value})


def test_guard_settings_parse() -> None:
    """Guard settings parse to lower-cased origins, a rate limit and CIDR networks, with defaults of
    no CORS and 60 a minute, and HSTS only for an https public URL."""
    settings = load(
        {
            "SPLITGO_CORS_ORIGINS": "https://App.Example, *, http://localhost:3000",
            "SPLITGO_RATE_LIMIT": "0",
            "SPLITGO_TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16, ::1",
        }
    )
    assert settings.cors_origins == ("https://app.example", "*", "http://localhost:3000")
    assert settings.rate_limit == 0
    assert settings.trusted_proxies == ("10.0.0.1/32", "10.1.0.0/16", "::1/128")
    assert load({}).cors_origins == ()
    assert load({}).rate_limit == 60
    assert Hardening.from_settings(load({}), "https://splitgo.example").hsts
    assert not Hardening.from_settings(load({}), "http://127.0.0.1:8080").hsts


# ── pure parts ─────────────────────────────────────────────────────────────────────────


def test_token_bucket_allows_a_burst_then_refills_evenly() -> None:
    """A client gets a burst of 60, then waits for tokens that refill evenly, with separate buckets
    per client and per group."""
    now = [1000.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.take("login", "1.2.3.4") for _ in range(60)] == [0.0] * 60
    wait = limiter.take("login", "1.2.3.4")
    assert wait == pytest.approx(1.0)
    assert limiter.take("login", "5.6.7.8") == 0.0  # another client has its own bucket
    assert limiter.take("register", "1.2.3.4") == 0.0  # and another group its own
    now[0] += 0.5
    assert limiter.take("login", "1.2.3.4") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("login", "1.2.3.4") == 0.0
    assert limiter.take("login", "1.2.3.4") > 0


def test_token_buckets_do_not_grow_without_end() -> None:
    """Once the bucket limit is reached, buckets that have refilled are dropped so the limiter stays
    small."""
    now = [0.0]
    limiter = RateLimiter(10, clock=lambda: now[0], max_buckets=100)
    for n in range(100):
        limiter.take("login", f"10.0.0.{n}")
    now[0] += 120  # every bucket is full again
    limiter.take("login", "10.0.1.1")
    assert len(limiter) == 1


def test_client_address_behind_trusted_proxies() -> None:
    """The client address is the peer unless it is a trusted proxy, else the rightmost untrusted
    forwarded hop, stopping at unparseable entries, and no proxies turns this off."""
    addresses = ClientAddress(("10.0.0.0/8", "::1/128"))
    assert addresses.of("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"  # untrusted peer
    assert addresses.of("10.0.0.2", ["198.51.100.1"]) == "198.51.100.1"
    # the client's own claim on the left is not believed past an untrusted hop
    assert addresses.of("10.0.0.2", ["1.1.1.1, 198.51.100.1, 10.0.0.7"]) == "198.51.100.1"
    assert addresses.of("::1", ["198.51.100.1", "10.0.0.3"]) == "198.51.100.1"
    assert addresses.of("10.0.0.2", ["garbage, 10.0.0.3"]) == "10.0.0.3"
    assert addresses.of("10.0.0.2", []) == "10.0.0.2"
    assert not ClientAddress(()).enabled


async def test_every_rate_limited_route_exists(system: ActorSystem) -> None:
    """The limiter's table names routes as the app declares them."""
    app = create_app(Services(system=system, node_id="t", ops_token="x"))
    declared = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    assert set(RATE_LIMITED) <= declared


def test_handler_failures_from_a_lost_database_are_503() -> None:
    """A crash that was the database going away is an outage (503), not a bug (500)."""
    for message in (
        "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5432)",
        "CannotConnectNowError: the database system is starting up",
        "ConnectionDoesNotExistError: connection was closed in the middle of operation",
    ):
        problem = from_domain_error(HandlerFailed(message))
        assert (problem.status, problem.code) == (503, "database_unavailable")
        assert problem.headers["Retry-After"] == "2"
    problem = from_domain_error(HandlerFailed("ValueError: a bug"))
    assert (problem.status, problem.code) == (500, "handler_failed")
    problem = from_domain_error(DatabaseUnavailable("gone", details={"retry_after": 2}))
    assert (problem.status, problem.code) == (503, "database_unavailable")
    assert problem.headers["Retry-After"] == "2"


async def test_database_down_knows_connection_errors_from_statement_errors() -> None:
    """database_down is true for asyncpg's connection and shutdown errors, a refused connect
    included, but false for statement errors, other exceptions and foreign socket errors."""
    assert database_down(asyncpg.CannotConnectNowError("the database system is starting up"))
    assert database_down(asyncpg.AdminShutdownError("terminating connection"))
    assert database_down(asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert database_down(asyncpg.InterfaceError("connection is closed"))
    assert not database_down(asyncpg.InterfaceError("another operation is in progress"))
    assert not database_down(asyncpg.UniqueViolationError("duplicate key"))
    assert not database_down(ValueError("no"))
    # a socket error counts only when asyncpg raised it
    assert not database_down(ConnectionRefusedError("someone else's socket"))
    with pytest.raises(OSError, match=r"Connect call failed|refused") as raised:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    assert database_down(raised.value)


# ── the runtime refusing asks while the database is down ───────────────────────────────


class Lookup(Message, frozen=True):
    key: str


class Note(Message, frozen=True):
    key: str


class Flaky(Actor):
    """Fails the way a handler does when PostgreSQL is gone, until told otherwise."""

    down = True
    told: list[str] = []

    @handles(Lookup)
    async def lookup(self, message: Lookup) -> Note:
        if Flaky.down:
            raise asyncpg.CannotConnectNowError("the database system is shutting down")
        return Note(key=message.key)

    @handles(Note)
    async def note(self, message: Note) -> None:
        if Flaky.down:
            raise asyncpg.CannotConnectNowError("the database system is shutting down")
        Flaky.told.append(message.key)


async def test_asks_fail_fast_as_database_unavailable_and_tells_are_kept() -> None:
    """While the database is down an ask answers DatabaseUnavailable at once (no crash, no
    dead letter); a tell crashes and is retried as before, and lands once it is back."""
    Flaky.down, Flaky.told = True, []
    codec = Codec()
    codec.register(Lookup, Note)
    system = ActorSystem(
        MemoryTransport(node_id="t", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
        ask_timeout=5,
    )
    await system.start()
    system.spawn(
        Flaky,
        "flaky",
        factory=Flaky,
        policy=RestartPolicy(backoff_initial=0.05, backoff_max=0.2),
        max_attempts=10,
    )
    try:
        with pytest.raises(DatabaseUnavailable):
            await system.ref("flaky").ask(Lookup(key="a"), timeout=2)
        [shard] = system.status()
        assert shard.restarts == 0
        assert shard.rejected == 1
        await system.ref("flaky").tell(Note(key="kept"))
        await asyncio.sleep(0.2)
        assert Flaky.told == []
        Flaky.down = False
        for _ in range(100):
            if Flaky.told:
                break
            await asyncio.sleep(0.05)
        assert Flaky.told == ["kept"]
        assert await system.ref("flaky").ask(Lookup(key="b"), timeout=2) == Note(key="b")
        letters, _ = await system.dead_letters.list(limit=10)
        assert letters == []
    finally:
        await system.stop(1.0)


# ── the guards over HTTP ───────────────────────────────────────────────────────────────


class Anything(msgspec.Struct):
    value: Any = None


probe_routes = web.RouteTableDef()


@probe_routes.post("/probe/json")
@documented(
    summary="Echo", auth="none", actor=False, body=Anything, responses={200: dict[str, Any]}
)
async def echo_json(request: web.Request, body: Anything) -> web.Response:
    return json_response({"ok": True, "kind": type(body.value).__name__})


@probe_routes.get("/probe/page")
async def page(_request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><p>hi</p>", content_type="text/html")


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    codec = Codec()
    built = ActorSystem(
        MemoryTransport(node_id="web", codec=codec),
        codec=codec,
        dead_letters=MemoryDeadLetterStore(),
    )
    await built.start()
    yield built
    await built.stop(1.0)


async def client_for(system: ActorSystem, hardening: Hardening) -> Client:
    app = create_app(
        Services(system=system, node_id="web", ops_token="ops-token"),
        extra=[probe_routes],
        hardening=hardening,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(system: ActorSystem) -> AsyncIterator[Client]:
    test_client = await client_for(system, Hardening())
    yield test_client
    await test_client.close()


async def test_a_too_large_body_is_a_413_problem(client: Client) -> None:
    """A body over 1 MiB gets a 413 problem response with code payload_too_large naming the
    limit."""
    response = await client.post(
        "/probe/json",
        data=b'{"value": "' + b"x" * (1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == "payload_too_large"
    assert "1048576 bytes" in body["detail"]


async def test_json_nested_too_deep_is_refused_naming_the_limit(client: Client) -> None:
    """JSON nested past the depth limit, however deep, is a 400 json_too_deep naming the limit,
    while brackets inside strings do not count."""
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    response = await client.post("/probe/json", data=ok, headers=JSON)
    assert response.status == 422  # decoded fine: not an object, as Anything wants
    deep = '{"value": ' + "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH + "}"
    response = await client.post("/probe/json", data=deep, headers=JSON)
    assert response.status == 400
    body = await response.json()
    assert body["code"] == "json_too_deep"
    assert str(MAX_JSON_DEPTH) in body["detail"]
    # far deeper than Python's recursion limit: still a clean 400, not a 500
    response = await client.post("/probe/json", data="[" * 100_000 + "]" * 100_000, headers=JSON)
    assert (response.status, (await response.json())["code"]) == (400, "json_too_deep")
    # brackets inside strings are text, not nesting
    response = await client.post("/probe/json", json={"value": "[" * 500})
    assert response.status == 200


async def test_json_strings_and_arrays_past_the_limits_are_422_naming_the_field(
    client: Client,
) -> None:
    """A string or array one past its limit is a 422 json_too_long naming the field, while one at
    the limit is accepted."""
    response = await client.post("/probe/json", json={"value": {"note": "x" * MAX_JSON_STRING}})
    assert response.status == 200
    response = await client.post(
        "/probe/json", json={"value": {"note": "x" * (MAX_JSON_STRING + 1)}}
    )
    assert response.status == 422
    body = await response.json()
    assert body["code"] == "json_too_long"
    assert body["errors"][0]["field"] == "$.value.note"
    assert str(MAX_JSON_STRING) in body["detail"]
    response = await client.post("/probe/json", json={"value": [0] * (MAX_JSON_ITEMS + 1)})
    body = await response.json()
    assert (response.status, body["code"]) == (422, "json_too_long")
    assert body["errors"][0]["field"] == "$.value"
    response = await client.post("/probe/json", json={"value": [0] * MAX_JSON_ITEMS})
    assert response.status == 200


async def test_security_headers_on_every_kind_of_response(client: Client) -> None:
    """JSON, problem and HTML responses all carry the security headers and the right CSP for their
    kind, with no HSTS or CORS headers by default."""
    responses = {
        "json": await client.get("/healthz"),
        "problem": await client.get("/no/such/route"),
        "html": await client.get("/probe/page"),
    }
    for response in responses.values():
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers  # http public URL
        assert "Access-Control-Allow-Origin" not in response.headers  # no CORS by default
    assert responses["json"].headers["Content-Security-Policy"] == API_CSP
    assert responses["problem"].headers["Content-Security-Policy"] == API_CSP
    assert responses["html"].headers["Content-Security-Policy"] == HTML_CSP
    assert "default-src 'none'" in API_CSP
    assert "frame-ancestors 'none'" in API_CSP
    docs = await client.get("/api/docs")
    if docs.status == 200:
        assert docs.headers["Content-Security-Policy"] == DOCS_CSP


async def test_hsts_only_when_the_public_url_is_https(system: ActorSystem) -> None:
    """With HSTS switched on, responses carry a Strict-Transport-Security header with a max-age."""
    client = await client_for(system, Hardening(hsts=True))
    try:
        response = await client.get("/healthz")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    finally:
        await client.close()


async def test_cors_is_off_by_default(client: Client) -> None:
    """Without configured origins a CORS preflight is a 403 cors_origin_not_allowed and no response
    carries Access-Control-Allow-Origin."""
    response = await client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 403
    assert (await response.json())["code"] == "cors_origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers
    response = await client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_for_listed_origins_with_credentials_and_star_without(
    system: ActorSystem,
) -> None:
    """A listed origin is echoed back with credentials allowed, any other origin gets * without
    credentials, and a preflight to an unknown route is a 404."""
    client = await client_for(system, Hardening(cors_origins=("https://app.example", "*")))
    try:
        preflight = await client.options(
            "/api/v1/transfers",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
            },
        )
        assert preflight.status == 204
        headers = preflight.headers
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert {"GET", "POST"} <= set(headers["Access-Control-Allow-Methods"].split(", "))
        assert "Idempotency-Key" in headers["Access-Control-Allow-Headers"]
        assert "Origin" in headers["Vary"]

        listed = await client.get("/healthz", headers={"Origin": "https://app.example"})
        assert listed.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert listed.headers["Access-Control-Allow-Credentials"] == "true"
        assert "X-Request-Id" in listed.headers["Access-Control-Expose-Headers"]
        assert "Origin" in listed.headers["Vary"]

        other = await client.get("/healthz", headers={"Origin": "https://other.example"})
        assert other.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in other.headers

        missing = await client.options(
            "/no/such/route",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert missing.status == 404
    finally:
        await client.close()


async def test_cors_only_listed_origins(system: ActorSystem) -> None:
    """With only specific origins listed, an unlisted origin gets no CORS header and its preflight
    is a 403."""
    client = await client_for(system, Hardening(cors_origins=("https://app.example",)))
    try:
        other = await client.get("/healthz", headers={"Origin": "https://other.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        preflight = await client.options(
            "/healthz",
            headers={"Origin": "https://other.example", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.status == 403
    finally:
        await client.close()


async def test_expensive_routes_are_rate_limited_per_client(system: ActorSystem) -> None:
    """Past the limit a route group answers 429 with Retry-After; other groups still pass."""
    client = await client_for(system, Hardening(rate_limit=3))
    try:
        statuses = []
        for _ in range(4):
            response = await client.post("/api/v1/auth/login", data=b"not json", headers=JSON)
            statuses.append(response.status)
        assert statuses == [400, 400, 400, 429]
        body = await response.json()
        assert body["code"] == "rate_limited"
        assert "3 a minute" in body["detail"]
        assert int(response.headers["Retry-After"]) >= 1
        # another group has its own bucket; routes outside the table are not limited
        response = await client.post("/api/v1/auth/register", data=b"not json", headers=JSON)
        assert response.status == 400
        for _ in range(5):
            assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_rate_limit_zero_is_off(system: ActorSystem) -> None:
    """With the rate limit set to 0, 70 login requests in a row are never throttled."""
    client = await client_for(system, Hardening(rate_limit=0))
    try:
        for _ in range(70):
            response = await client.post("/api/v1/auth/login", data=b"not json", headers=JSON)
            assert response.status == 400
    finally:
        await client.close()


async def test_forwarded_clients_behind_a_trusted_proxy_have_their_own_buckets(
    system: ActorSystem,
) -> None:
    """Behind a trusted proxy each forwarded client address has its own rate-limit bucket, and a
    second request from the same one gets a 429."""
    client = await client_for(system, Hardening(rate_limit=1, trusted_proxies=("127.0.0.1/32",)))
    try:
        for address in ("198.51.100.1", "198.51.100.2"):
            response = await client.post(
                "/api/v1/auth/login", data=b"x", headers={**JSON, "X-Forwarded-For": address}
            )
            assert response.status == 400
        response = await client.post(
            "/api/v1/auth/login",
            data=b"x",
            headers={**JSON, "X-Forwarded-For": "198.51.100.1"},
        )
        assert response.status == 429
    finally:
        await client.close()
