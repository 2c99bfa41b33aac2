"""Revocation that bites: once a session ends — logout, DELETE /auth/sessions/{id}, a
password reset, refresh-token reuse — its access tokens are refused within a second, on
the node that ended it and on every other; a node started later refuses them too, and a
node whose broadcast subscription dropped catches up from PostgreSQL when it reconnects.

Real nodes (`python run.py`) on a fresh database: one on the memory transport (a second
started on the same database later), and two on Redis.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as redis
from joserfc import jwt

from actors.auth.tokens import derive_signing_key
from tests.e2e.test_cluster import Cluster, cluster_on, spread_over_nodes
from tests.support.api import PASSWORD, Api
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.postgres import fresh_database
from tests.support.redis import redis_url
from tests.support.smtp import body_text, link_in

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

KID = "revocation"
SECRET = "revocation-e2e-signing-secret-0123456789abcdef"
NEW_PASSWORD = "violet elephants juggle 17 lanterns"
# the promise of API.md: a revoked session's tokens are refused within a second
WITHIN = 1.0


@dataclass
class Session:
    """One sign-in: its tokens, and whose they are."""

    user_id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class MemoryWorld:
    """A node on the memory transport, and what a second node on its database needs."""

    node: RunningNode
    database_url: str
    env: dict[str, str]
    folder: Path


def node_env(database_url: str) -> dict[str, str]:
    return {
        "SPLITGO_DATABASE_URL": database_url,
        "SPLITGO_JWT_KEYS": f"{KID}:{SECRET}",
        "SPLITGO_OPS_TOKEN": "revocation-ops-token",
        "SPLITGO_SHUTDOWN_TIMEOUT": "5",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def memory(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MemoryWorld]:
    folder = tmp_path_factory.mktemp("revocation-memory")
    async with fresh_database() as database_url:
        env = node_env(database_url)
        node = await start_node(folder / "a", env=env)
        try:
            yield MemoryWorld(node, database_url, env, folder)
        finally:
            await stop_node(node)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """Two nodes on Redis, each hosting every actor type."""
    folder = tmp_path_factory.mktemp("revocation-redis")
    async with cluster_on(folder, redis_url()) as built:
        env = {**built.env(), "SPLITGO_PLUGINS": "", "SPLITGO_JWT_KEYS": f"{KID}:{SECRET}"}
        for name in ("a", "b"):
            node = await start_node(
                folder / name, "--transport", "redis", "--node-id", name, env=env
            )
            built.nodes.append(node)
        await spread_over_nodes(built.nodes[0].url, nodes=2)
        yield built


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def sign_up(api: Api) -> str:
    address = f"r{secrets.token_hex(5)}@example.com"
    body = {"email": address, "password": PASSWORD, "name": "Rita"}
    reply = await api.call("POST", "/api/v1/auth/register", body=body)
    assert reply.status == 201, reply.body
    return address


async def sign_in(api: Api, address: str, password: str = PASSWORD) -> Session:
    body = {"email": address, "password": password}
    reply = await api.call("POST", "/api/v1/auth/login", body=body)
    assert reply.status == 200, reply.body
    me = await api.call("GET", "/api/v1/me", headers=bearer(reply.body["access_token"]))
    assert me.status == 200, me.body
    return Session(me.body["id"], address, reply.body["access_token"], reply.body["refresh_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(api: Api, token: str) -> Any:
    return await api.call("GET", "/api/v1/me", headers=bearer(token))


async def refused_within(api: Api, token: str, seconds: float = WITHIN) -> dict[str, Any]:
    """The problem /me answers once the token is refused; fails if it is still accepted
    `seconds` after the call."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        reply = await me(api, token)
        if reply.status != 200:
            assert reply.status == 401, reply.body
            return dict(reply.body)
        if loop.time() >= deadline:
            raise AssertionError(f"{api.url}: the token was still accepted after {seconds}s")
        await asyncio.sleep(0.02)


async def reset_token(node: RunningNode, address: str) -> str:
    """The token of the reset link mailed to `address` (mails are .eml files here)."""
    for _ in range(200):
        for path in sorted((node.folder / "data" / "mail").glob("*.eml")):
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            if address in str(mail["To"]) and "/reset-password" in body_text(mail):
                return link_in(mail, "/reset-password").split("token=")[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no reset mail for {address}")


# ── one node, memory transport ─────────────────────────────────────────────────────────


async def test_logout_refuses_the_access_token_at_once(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """/me answers 200, then logout: the same access token is refused within a second,
    with 401 session_revoked."""
    api = Api(memory.node.url, http)
    session = await sign_in(api, await sign_up(api))
    reply = await api.call(
        "POST", "/api/v1/auth/logout", body={"refresh_token": session.refresh_token}
    )
    assert reply.status == 204, reply.body
    problem = await refused_within(api, session.access_token)
    assert problem["code"] == "session_revoked"


async def test_deleting_a_session_refuses_its_access_token_at_once(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """DELETE /auth/sessions/{id} ends that session's access token within a second; the
    caller's own session goes on."""
    api = Api(memory.node.url, http)
    address = await sign_up(api)
    phone, laptop = await sign_in(api, address), await sign_in(api, address)
    listed = await api.call("GET", "/api/v1/auth/sessions", headers=laptop.headers)
    other = next(item for item in listed.body["items"] if not item["current"])
    reply = await api.call("DELETE", f"/api/v1/auth/sessions/{other['id']}", headers=laptop.headers)
    assert reply.status == 204, reply.body
    assert (await refused_within(api, phone.access_token))["code"] == "session_revoked"
    assert (await me(api, laptop.access_token)).status == 200


async def test_a_password_reset_refuses_every_access_token_at_once(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """A password reset ends every session of the user: each access token is refused
    within a second; one signed in with the new password works."""
    api = Api(memory.node.url, http)
    address = await sign_up(api)
    sessions = [await sign_in(api, address), await sign_in(api, address)]
    reply = await api.call("POST", "/api/v1/auth/password/forgot", body={"email": address})
    assert reply.status == 202, reply.body
    token = await reset_token(memory.node, address)
    body = {"token": token, "password": NEW_PASSWORD}
    reply = await api.call("POST", "/api/v1/auth/password/reset", body=body)
    assert reply.status == 204, reply.body
    for session in sessions:
        assert (await refused_within(api, session.access_token))["code"] == "session_revoked"
    fresh = await sign_in(api, address, NEW_PASSWORD)
    assert (await me(api, fresh.access_token)).status == 200


async def test_refresh_token_reuse_refuses_the_sessions_access_tokens_at_once(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """A rotated refresh token presented again (401 token_reused) ends its session: the
    access tokens issued before and after the rotation are refused within a second."""
    api = Api(memory.node.url, http)
    first = await sign_in(api, await sign_up(api))
    rotated = await api.call(
        "POST", "/api/v1/auth/refresh", body={"refresh_token": first.refresh_token}
    )
    assert rotated.status == 200, rotated.body
    second_access = rotated.body["access_token"]
    assert (await me(api, second_access)).status == 200
    reused = await api.call(
        "POST", "/api/v1/auth/refresh", body={"refresh_token": first.refresh_token}
    )
    assert (reused.status, reused.body["code"]) == (401, "token_reused")
    for token in (first.access_token, second_access):
        assert (await refused_within(api, token))["code"] == "session_revoked"


async def test_a_token_issued_an_hour_ahead_is_refused(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """A correctly signed token of a live session whose `iat` lies an hour ahead is a 401
    invalid_token."""
    api = Api(memory.node.url, http)
    session = await sign_in(api, await sign_up(api))
    key = derive_signing_key(KID, SECRET.encode())
    claims = jwt.decode(session.access_token, key).claims
    ahead = int(time.time()) + 3600
    forged = jwt.encode(
        {"alg": "ES256", "kid": KID}, {**claims, "iat": ahead, "exp": ahead + 900}, key
    )
    reply = await me(api, forged)
    assert (reply.status, reply.body["code"]) == (401, "invalid_token"), reply.body
    assert "future" in reply.body["detail"]
    assert (await me(api, session.access_token)).status == 200


async def test_a_node_started_after_a_revocation_refuses_the_token(
    memory: MemoryWorld, http: aiohttp.ClientSession
) -> None:
    """A node that was not running when a session ended loads the revocation from
    PostgreSQL at start: its first answer to that token is already a 401."""
    api = Api(memory.node.url, http)
    address = await sign_up(api)
    ended, alive = await sign_in(api, address), await sign_in(api, address)
    reply = await api.call(
        "POST", "/api/v1/auth/logout", body={"refresh_token": ended.refresh_token}
    )
    assert reply.status == 204, reply.body
    later = await start_node(memory.folder / "later", env=memory.env)
    try:
        other = Api(later.url, http)
        reply = await me(other, ended.access_token)
        assert (reply.status, reply.body["code"]) == (401, "session_revoked")
        assert (await me(other, alive.access_token)).status == 200
    finally:
        await stop_node(later)


# ── two nodes on Redis ─────────────────────────────────────────────────────────────────


async def test_a_logout_on_one_node_is_refused_on_the_other_at_once(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    """Signed in on node a, the token works on b; logged out on a, b refuses it within a
    second."""
    a, b = (Api(node.url, http) for node in cluster.nodes)
    session = await sign_in(a, await sign_up(a))
    assert (await me(b, session.access_token)).status == 200
    reply = await a.call(
        "POST", "/api/v1/auth/logout", body={"refresh_token": session.refresh_token}
    )
    assert reply.status == 204, reply.body
    assert (await refused_within(b, session.access_token))["code"] == "session_revoked"


async def test_a_node_catches_up_from_postgresql_when_its_subscription_reconnects(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    """A revocation node b never heard (written straight to PostgreSQL, as one published
    while b's pub/sub connection was down would be lost) is refused by b once its
    subscription is dropped and made again."""
    a, b = (Api(node.url, http) for node in cluster.nodes)
    session = await sign_in(a, await sign_up(a))
    connection = await asyncpg.connect(cluster.database_url)
    try:
        # ended while nobody listened: no event goes out
        await connection.execute(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'logout'"
            " WHERE user_id = $1",
            session.user_id,
        )
    finally:
        await connection.close()
    assert (await me(b, session.access_token)).status == 200
    client = redis.Redis.from_url(cluster.redis_url)
    try:
        name = f"{cluster.prefix}:broadcast:b"
        subscribers = await client.client_list(_type="pubsub")
        ids = [c["id"] for c in subscribers if c["name"] == name]
        assert len(ids) == 1, subscribers
        await client.client_kill_filter(_id=ids[0])
    finally:
        await client.aclose()
    # b resubscribes (backoff starts at 0.2 s) and reloads through auth
    assert (await refused_within(b, session.access_token, 10.0))["code"] == "session_revoked"
    assert (await me(a, session.access_token)).status == 200  # a's subscription never dropped
