"""The passkey routes over HTTP against a real node, with real WebAuthn responses from a
software authenticator (tests/support/soft_authenticator.py): add a passkey, sign in with
it, the list, rename and delete, and each refusal as problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from actors.auth.messages import AccessTokenVerifier
from tests.support.api import Api, User
from tests.support.node import RunningNode, start_node, stop_node
from tests.support.soft_authenticator import SoftAuthenticator

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path_factory.mktemp("passkeys-node"))
    yield running
    if running.process.poll() is None:
        await stop_node(running)


@pytest_asyncio.fixture(loop_scope="module")
async def api(node: RunningNode) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(node.url, session)


async def add_passkey(api: Api, user: User, authenticator: SoftAuthenticator) -> dict[str, Any]:
    options = await api.ok("POST", "/api/v1/me/passkeys/options", user)
    credential = authenticator.create(options)
    body = {"credential": credential, "name": "Phone"}
    added: dict[str, Any] = await api.ok("POST", "/api/v1/me/passkeys", user, body, 201)
    return added


async def assertion(api: Api, authenticator: SoftAuthenticator, **how: Any) -> dict[str, Any]:
    options = await api.call("POST", "/api/v1/auth/passkeys/sign-in/options")
    assert options.status == 200, options.body
    return authenticator.get(options.body, **how)


async def test_a_passkey_added_over_the_api_signs_in_and_is_managed(
    api: Api, node: RunningNode
) -> None:
    """Options name the node's host; the added passkey is listed, signs its owner in (an
    access token saying hwk and user), is renamed, and once deleted signs nobody in."""
    user = await api.register()
    authenticator = SoftAuthenticator(node.url)
    options = await api.ok("POST", "/api/v1/me/passkeys/options", user)
    assert options["rp"]["id"] == "127.0.0.1"
    added = await add_passkey(api, user, authenticator)
    assert added["name"] == "Phone"
    assert "public_key" not in added
    listed = await api.ok("GET", "/api/v1/me/passkeys", user)
    assert [item["id"] for item in listed["items"]] == [added["id"]]

    signed_in = {"credential": await assertion(api, authenticator)}
    signed = await api.call("POST", "/api/v1/auth/passkeys/sign-in", body=signed_in)
    assert signed.status == 200, signed.body
    jwks = await api.call("GET", "/.well-known/jwks.json")
    claims = AccessTokenVerifier(jwks.body).verify(signed.body["access_token"])
    assert (claims.sub, claims.amr) == (user.id, ["hwk", "user"])
    as_passkey = User(user.id, user.email, signed.body["access_token"])
    assert (await api.ok("GET", "/api/v1/me", as_passkey))["id"] == user.id

    renamed = await api.ok(
        "PATCH", f"/api/v1/me/passkeys/{added['id']}", user, {"name": "Work phone"}
    )
    assert renamed["name"] == "Work phone"
    await api.ok("DELETE", f"/api/v1/me/passkeys/{added['id']}", user, status=204)
    await api.problem(
        "POST",
        "/api/v1/auth/passkeys/sign-in",
        None,
        {"credential": await assertion(api, authenticator)},
        status=401,
        code="unknown_passkey",
    )


async def test_replays_and_other_sites_are_refused(api: Api, node: RunningNode) -> None:
    """The same assertion twice is 401 passkey_replayed; one made on another origin is 422
    passkey_rejected; a stranger's passkey is 401 unknown_passkey."""
    user = await api.register()
    authenticator = SoftAuthenticator(node.url)
    await add_passkey(api, user, authenticator)
    used = await assertion(api, authenticator)
    first = await api.call("POST", "/api/v1/auth/passkeys/sign-in", body={"credential": used})
    assert first.status == 200, first.body
    path = "/api/v1/auth/passkeys/sign-in"
    await api.problem("POST", path, None, {"credential": used}, status=401, code="passkey_replayed")
    phished = await assertion(api, authenticator, origin="http://evil.example")
    await api.problem(
        "POST", path, None, {"credential": phished}, status=422, code="passkey_rejected"
    )
    stranger = await assertion(api, SoftAuthenticator(node.url))
    await api.problem(
        "POST", path, None, {"credential": stranger}, status=401, code="unknown_passkey"
    )


async def test_bad_bodies_name_the_field_and_change_nothing(api: Api) -> None:
    """A missing credential, a name too long, another user's passkey id and no token are
    each refused plainly; the list stays empty."""
    user = await api.register()
    await api.problem(
        "POST", "/api/v1/auth/passkeys/sign-in", None, {}, status=422, code="validation_error"
    )
    await api.problem(
        "POST",
        "/api/v1/me/passkeys",
        user,
        {"credential": {}, "name": "x" * 61},
        status=422,
        code="validation_error",
        field="$.name",
    )
    await api.problem(
        "POST",
        "/api/v1/me/passkeys",
        user,
        {"credential": {"id": "x"}, "name": "Phone"},
        status=422,
        code="passkey_rejected",
    )
    await api.problem(
        "PATCH",
        "/api/v1/me/passkeys/no-such-passkey",
        user,
        {"name": "Mine"},
        status=404,
        code="passkey_not_found",
    )
    await api.problem("GET", "/api/v1/me/passkeys", None, status=401, code="invalid_token")
    assert (await api.ok("GET", "/api/v1/me/passkeys", user))["items"] == []
