"""The edge's guards on a real `python run.py`: body and JSON limits, security headers, CORS,
the per-client rate limit, secrets kept off the command line, and the start-up refusal of a
generated signing key next to an external database."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.support.node import PROJECT_ROOT, RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ORIGIN = "https://app.example"
RATE = 5


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(
        tmp_path_factory.mktemp("hardening-node"),
        env={
            "SPLITGO_CORS_ORIGINS": ORIGIN,
            "SPLITGO_RATE_LIMIT": str(RATE),
            "SPLITGO_PUBLIC_URL": "https://splitgo.example",
        },
    )
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_every_response_has_the_security_headers(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """JSON, problem and HTML responses all carry the security headers, HSTS for the https public
    URL, and a CSP that fits HTML (never with 'unsafe-inline') or API content."""
    for path in ("/healthz", "/no/such/route", "/verify-email", "/api/docs"):
        async with http.get(f"{node.url}{path}") as response:
            headers = response.headers
            html = response.content_type == "text/html"
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "no-referrer", path
        # the public URL is https: browsers are told to stay on it
        assert headers["Strict-Transport-Security"].startswith("max-age="), path
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, path
        if html:
            assert "form-action 'self'" in policy, path
            assert "'unsafe-inline'" not in policy, path  # no page runs inline code or styles
        else:
            assert policy.startswith("default-src 'none';"), path
            assert "script-src" not in policy, path


async def test_a_body_over_a_mebibyte_is_a_413_problem(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """A request body over 1 MiB is answered with a 413 payload_too_large problem."""
    body = b'{"email": "' + b"a" * (1024 * 1024) + b'"}'
    async with http.post(
        f"{node.url}/api/v1/auth/password/forgot",
        data=body,
        headers={"Content-Type": "application/json"},
    ) as response:
        assert response.status == 413
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "payload_too_large"


async def test_deep_or_long_json_is_refused_naming_the_limit(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """Over-deep JSON is a 400 json_too_deep naming the limit of 32, and an over-long string is a
    422 json_too_long naming the field."""
    deep = '{"email": ' + "[" * 5000 + "]" * 5000 + "}"
    async with http.post(
        f"{node.url}/api/v1/auth/refresh",
        data=deep,
        headers={"Content-Type": "application/json"},
    ) as response:
        problem = await response.json()
    assert (response.status, problem["code"]) == (400, "json_too_deep")
    assert "32" in problem["detail"]
    async with http.post(
        f"{node.url}/api/v1/auth/refresh", json={"refresh_token": "x" * 70_000}
    ) as response:
        problem = await response.json()
    assert (response.status, problem["code"]) == (422, "json_too_long")
    assert problem["errors"][0]["field"] == "$.refresh_token"


async def test_cors_preflight_and_responses_for_the_listed_origin_only(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """The listed origin gets a credentialed preflight and CORS headers even on a 401, while another
    origin's preflight is a 403 and its responses carry no CORS header."""
    async with http.options(
        f"{node.url}/api/v1/wallet",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    async with http.get(f"{node.url}/api/v1/wallet", headers={"Origin": ORIGIN}) as response:
        assert response.status == 401  # CORS lets the browser read the refusal
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    async with http.options(
        f"{node.url}/api/v1/wallet",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    ) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers
    async with http.get(
        f"{node.url}/healthz", headers={"Origin": "https://evil.example"}
    ) as response:
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_the_login_route_is_rate_limited_per_client(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    """The edge's limiter (before the auth actor's own lockouts): past SPLITGO_RATE_LIMIT
    requests a minute from one address a route group answers 429 with Retry-After."""
    statuses = []
    for n in range(RATE + 1):
        async with http.post(
            f"{node.url}/api/v1/auth/login",
            json={"email": f"nobody{n}@example.com", "password": "wrong password 123"},
        ) as response:
            statuses.append(response.status)
            if response.status == 429:
                problem = await response.json()
                retry_after = int(response.headers["Retry-After"])
    assert statuses == [401] * RATE + [429]
    assert problem["code"] == "rate_limited"
    assert 1 <= retry_after <= 60
    # other routes are not limited
    for _ in range(RATE + 1):
        async with http.get(f"{node.url}/healthz") as response:
            assert response.status == 200


async def test_secrets_are_not_command_line_flags() -> None:
    """`run.py --help` offers no flag for a secret: they come from the environment only."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "run.py", "--help", cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    shown = stdout.decode()
    assert "--port" in shown
    for word in ("token", "secret", "password", "jwt", "database-url", "redis-url", "key"):
        assert f"--{word}" not in shown
        assert f"-{word}" not in shown.replace("--data-dir", "")


async def test_an_external_database_without_signing_keys_refuses_to_start(
    tmp_path: Path,
) -> None:
    """With SPLITGO_DATABASE_URL and no SPLITGO_JWT_KEYS the node exits 2 naming the variable
    (before it touches the database: the URL here leads nowhere)."""
    environment = {
        **os.environ,
        "SPLITGO_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "SPLITGO_LOG_FORMAT": "json",
    }
    environment.pop("SPLITGO_JWT_KEYS", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "run.py",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "SPLITGO_JWT_KEYS" in stdout.decode()
    assert not (tmp_path / "data" / "jwt-keys").exists()
