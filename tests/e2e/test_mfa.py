"""Two-factor sign-in over HTTP against a real node that requires it of admins
(SPLITGO_MFA_REQUIRED_FOR_ADMINS): set up, sign in with a code or a recovery code, the
admin API refused until then, lockout, and nothing secret in the logs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
import pytest_asyncio

from tests.support.node import PROJECT_ROOT, RunningNode, start_node, stop_node

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ADMIN = "root@example.com"
PASSWORD = "correct horse battery staple 42"


@dataclass
class World:
    node: RunningNode
    seen_secrets: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.node.url}/api/v1"

    @property
    def ops(self) -> str:
        return f"{self.node.url}/ops/actors"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    folder = tmp_path_factory.mktemp("mfa-node")
    env = {
        "SPLITGO_JWT_KEYS": "mfa-k1:e2e-signing-secret-that-is-long-enough-0123456789",
        "SPLITGO_OPS_TOKEN": "mfa-e2e-ops-token",
        "SPLITGO_MFA_REQUIRED_FOR_ADMINS": "1",
        "SPLITGO_LOG_LEVEL": "debug",
    }
    node = await start_node(folder, env=env)
    try:
        await make_admin(env, folder)
        yield World(node)
    finally:
        await stop_node(node)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def make_admin(env: dict[str, str], folder: Path) -> None:
    """`run.py admin create` makes the admin, its password from SPLITGO_ADMIN_PASSWORD."""
    command = [sys.executable, "run.py", "admin", "create", "--email", ADMIN]
    command += ["--data-dir", str(folder / "data")]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env, "SPLITGO_ADMIN_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **options: Any
) -> tuple[int, Any]:
    async with http.request(method, url, **options) as response:
        body = await response.json() if response.content_type.endswith("json") else None
        return response.status, body


async def login(world: World, http: aiohttp.ClientSession, email: str) -> tuple[int, Any]:
    return await call(
        http, "POST", f"{world.api}/auth/login", json={"email": email, "password": PASSWORD}
    )


async def test_an_admin_needs_the_second_factor_for_the_admin_api(
    world: World, http: aiohttp.ClientSession
) -> None:
    """An admin without TOTP signs in but /ops and the admin API answer 403 mfa_required;
    once TOTP is set up (and the tokens refreshed) they answer; a new sign-in then needs a
    code (202), and a recovery code works once."""
    status, tokens = await login(world, http, ADMIN)
    assert status == 200
    status, problem = await call(http, "GET", world.ops, headers=bearer(tokens))
    assert (status, problem["code"]) == (403, "mfa_required")
    assert "/account/mfa" in problem["detail"]
    clients = f"{world.api}/admin/oidc-clients"
    status, problem = await call(http, "GET", clients, headers=bearer(tokens))
    assert (status, problem["code"]) == (403, "mfa_required")

    status, setup = await call(http, "POST", f"{world.api}/me/mfa/totp", headers=bearer(tokens))
    assert status == 201
    assert setup["uri"].startswith("otpauth://totp/splitgo:")
    world.seen_secrets.append(setup["secret"])
    totp = pyotp.TOTP(setup["secret"])
    status, problem = await call(
        http,
        "POST",
        f"{world.api}/me/mfa/totp/confirm",
        headers=bearer(tokens),
        json={"code": "12"},
    )
    assert (status, problem["code"], problem["errors"][0]["field"]) == (
        422,
        "invalid_field",
        "$.code",
    )
    status, confirmed = await call(
        http,
        "POST",
        f"{world.api}/me/mfa/totp/confirm",
        headers=bearer(tokens),
        json={"code": totp.now()},
    )
    assert status == 200
    codes = confirmed["recovery_codes"]
    assert len(codes) == 10
    world.seen_secrets.extend(codes)
    status, refreshed = await call(
        http, "POST", f"{world.api}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert status == 200
    status, _ = await call(http, "GET", world.ops, headers=bearer(refreshed))
    assert status == 200
    status, _ = await call(http, "GET", clients, headers=bearer(refreshed))
    assert status == 200

    status, challenge = await login(world, http, ADMIN)
    assert status == 202
    assert set(challenge) == {"mfa_token", "expires_in", "methods"}
    world.seen_secrets.append(challenge["mfa_token"])
    finish = f"{world.api}/auth/login/mfa"
    status, signed_in = await call(
        http, "POST", finish, json={"mfa_token": challenge["mfa_token"], "code": codes[0]}
    )
    assert status == 200
    status, _ = await call(http, "GET", world.ops, headers=bearer(signed_in))
    assert status == 200
    status, again = await login(world, http, ADMIN)
    status, problem = await call(
        http, "POST", finish, json={"mfa_token": again["mfa_token"], "code": codes[0]}
    )
    assert (status, problem["code"]) == (422, "wrong_mfa_code")
    # the next time step's code is still in the window, and later than the one spent
    status, _ = await call(
        http,
        "POST",
        finish,
        json={"mfa_token": again["mfa_token"], "code": totp.at(time.time() + 30)},
    )
    assert status == 200
    status, problem = await call(
        http, "POST", finish, json={"mfa_token": again["mfa_token"], "code": totp.now()}
    )
    assert (status, problem["code"]) == (401, "invalid_mfa_token")


async def test_five_wrong_codes_are_429_with_retry_after(
    world: World, http: aiohttp.ClientSession
) -> None:
    """A user's five wrong codes in a row lock the second step: 429 with Retry-After."""
    email = "lockout@example.com"
    status, _ = await call(
        http,
        "POST",
        f"{world.api}/auth/register",
        json={"email": email, "password": PASSWORD, "name": "Lock Out"},
    )
    assert status == 201
    _, tokens = await login(world, http, email)
    _, setup = await call(http, "POST", f"{world.api}/me/mfa/totp", headers=bearer(tokens))
    world.seen_secrets.append(setup["secret"])
    totp = pyotp.TOTP(setup["secret"])
    confirm = f"{world.api}/me/mfa/totp/confirm"
    status, _ = await call(http, "POST", confirm, headers=bearer(tokens), json={"code": totp.now()})
    assert status == 200
    _, challenge = await login(world, http, email)
    right = totp.at(time.time() + 30)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    body = {"mfa_token": challenge["mfa_token"], "code": wrong}
    for _ in range(5):
        status, problem = await call(http, "POST", f"{world.api}/auth/login/mfa", json=body)
        assert (status, problem["code"]) == (422, "wrong_mfa_code")
    _, fresh = await login(world, http, email)
    async with http.post(
        f"{world.api}/auth/login/mfa", json={"mfa_token": fresh["mfa_token"], "code": right}
    ) as response:
        assert response.status == 429
        assert 290 <= int(response.headers["Retry-After"]) <= 300


async def test_the_logs_hold_no_code_secret_or_challenge(world: World) -> None:
    """No TOTP secret, recovery code or challenge token shows up in the node's logs."""
    output = world.node.output()
    assert "mfa_code_refused" in output
    for secret in world.seen_secrets:
        assert secret not in output
