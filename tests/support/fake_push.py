"""A fake Web Push service the tests run themselves: a real HTTP server on 127.0.0.1 that
does what a browser and its push service do together.

`subscribe()` plays the browser: it makes a P-256 key pair and an auth secret and answers
what `PushSubscription.toJSON()` would (`endpoint`, `keys.p256dh`, `keys.auth`), keeping
the private key. A POST to that endpoint is checked as a push service checks it (RFC 8292:
`Authorization: vapid t=<JWT>, k=<key>`, the key the node publishes, the ES256 signature,
the audience and expiry; `Content-Encoding: aes128gcm`, a TTL) and then DECRYPTED with the
subscription's private key (RFC 8291), as the browser would: what arrives is recorded in
`received` as the decoded JSON. A refused request is recorded in `refused` with why.
`answer(endpoint, 410)` makes that endpoint answer a status instead (gone, 5xx…).

    async with FakePush(vapid_public_key=key) as push:
        subscription = push.subscribe()
        ...
        message = await push.wait_received(lambda m: m.payload["title"] == "…")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from actors.notifications.channels.webpush import (
    b64u,
    browser_key,
    decrypt,
    public_bytes,
    unb64u,
)

MAX_JWT_LIFETIME = 24 * 3600  # RFC 8292 section 2


@dataclass(frozen=True, slots=True)
class Received:
    """One push message as the browser would read it."""

    token: str
    payload: dict[str, Any]
    headers: dict[str, str]
    claims: dict[str, Any]


@dataclass(slots=True)
class _Browser:
    private: ec.EllipticCurvePrivateKey
    auth: bytes


class FakePush:
    """A push service for tests: checks VAPID, decrypts, records; answers on request."""

    def __init__(self, *, vapid_public_key: str | None = None) -> None:
        # the application server key the browsers "subscribed with"; None: any key
        self.vapid_public_key = vapid_public_key
        self.base_url = ""
        self.received: list[Received] = []
        self.refused: list[tuple[str, str]] = []  # (token, why)
        self._browsers: dict[str, _Browser] = {}
        self._answers: dict[str, int] = {}
        self._tokens = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/push/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakePush:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ── what the test does ─────────────────────────────────────────────────────────────

    def subscribe(self) -> dict[str, Any]:
        """A new browser's subscription, as `PushSubscription.toJSON()` gives it."""
        token = f"t{next(self._tokens)}"
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))
        self._browsers[token] = browser
        return {
            "endpoint": f"{self.base_url}/push/{token}",
            "expirationTime": None,
            "keys": {
                "p256dh": b64u(public_bytes(browser.private.public_key())),
                "auth": b64u(browser.auth),
            },
        }

    def answer(self, endpoint: str, status: int | None) -> None:
        """From now on, that endpoint answers `status` (410: the subscription is gone);
        None: it takes messages again."""
        token = endpoint.rsplit("/", 1)[-1]
        if status is None:
            self._answers.pop(token, None)
        else:
            self._answers[token] = status

    async def wait_received(
        self, predicate: Callable[[Received], bool], timeout: float = 10.0
    ) -> Received:
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for message in self.received:
                    if predicate(message):
                        return message
                await self._arrived.wait()

    async def wait_calls(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` requests (accepted or refused) have come."""
        async with asyncio.timeout(timeout), self._arrived:
            while len(self.received) + len(self.refused) < count:
                await self._arrived.wait()

    # ── the push service ───────────────────────────────────────────────────────────────

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.read()
        try:
            if token not in self._browsers:
                return await self._refuse(token, 404, "no such subscription")
            if token in self._answers:
                status = self._answers[token]
                return await self._refuse(token, status, f"answered {status} on request")
            claims = self._check_vapid(request)
            if request.headers.get("Content-Encoding") != "aes128gcm":
                return await self._refuse(token, 400, "Content-Encoding is not aes128gcm")
            if not request.headers.get("TTL", "").isdigit():
                return await self._refuse(token, 400, "no TTL")
            browser = self._browsers[token]
            plain = decrypt(body, browser.private, browser.auth)
            payload = json.loads(plain)
        except _Refused as refused:
            return await self._refuse(token, refused.status, str(refused))
        except ValueError as error:
            return await self._refuse(token, 400, f"undecryptable: {error}")
        message = Received(token, payload, dict(request.headers), claims)
        async with self._arrived:
            self.received.append(message)
            self._arrived.notify_all()
        return web.Response(status=201, headers={"Location": f"/message/{len(self.received)}"})

    async def _refuse(self, token: str, status: int, why: str) -> web.Response:
        async with self._arrived:
            self.refused.append((token, why))
            self._arrived.notify_all()
        return web.Response(status=status, text=why)

    def _check_vapid(self, request: web.Request) -> dict[str, Any]:
        """RFC 8292: the JWT is signed by the key in `k`, which is the server's key, for
        this push service's origin, not expired and not too long-lived."""
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            raise _Refused(401, "no vapid Authorization")
        fields = dict(
            part.strip().split("=", 1) for part in params.split(",") if "=" in part.strip()
        )
        jwt, key = fields.get("t", ""), fields.get("k", "")
        if self.vapid_public_key is not None and key != self.vapid_public_key:
            raise _Refused(403, "k is not the key the browser subscribed with")
        try:
            head_b64, claims_b64, signature_b64 = jwt.split(".")
            head = json.loads(unb64u(head_b64))
            claims = json.loads(unb64u(claims_b64))
            signature = unb64u(signature_b64)
            public = browser_key(unb64u(key))
        except ValueError as error:
            raise _Refused(401, f"malformed vapid JWT or key: {error}") from None
        if head.get("alg") != "ES256" or len(signature) != 64:
            raise _Refused(401, "the JWT is not ES256")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            public.verify(der, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise _Refused(401, "the JWT's signature does not verify") from None
        if claims.get("aud") != self.base_url:
            raise _Refused(403, f"aud {claims.get('aud')!r} is not {self.base_url}")
        now = time.time()
        if not now < claims.get("exp", 0) <= now + MAX_JWT_LIFETIME + 60:
            raise _Refused(403, "exp is past or more than 24 hours away")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:", "http:")):
            raise _Refused(403, "no sub contact")
        return dict(claims)


class _Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
