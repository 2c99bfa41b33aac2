"""A fake Stripe the tests run themselves: a real HTTP server on 127.0.0.1.

It serves the one endpoint the Stripe adapter calls, `POST /v1/checkout/sessions`, checking
what Stripe checks (the bearer API key, the form fields we rely on) and, like Stripe, answering
a repeated `Idempotency-Key` with the first session. `GET /pay/{id}` stands in for Stripe's
hosted checkout page.

`event_for(session_id, paid=True)` builds the webhook Stripe would send for a stored session,
signed with the webhook secret by this module's own implementation of Stripe's scheme (not the
adapter's), so the tests check the adapter against the scheme rather than against itself.

Switches for the unhappy paths: `fail_status` (answer every create with that HTTP status and a
Stripe-style error body, e.g. 500 or 401).

    async with FakeStripe() as stripe:
        provider = StripeProvider(stripe.api_key, stripe.webhook_secret,
                                  base_url=stripe.url, http=http)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

REQUIRED_FIELDS = (
    "mode",
    "line_items[0][price_data][currency]",
    "line_items[0][price_data][unit_amount]",
    "line_items[0][price_data][product_data][name]",
    "line_items[0][quantity]",
    "success_url",
    "cancel_url",
)


@dataclass
class RecordedRequest:
    """One request to `/v1/checkout/sessions`, as it arrived."""

    headers: dict[str, str]
    form: list[tuple[str, str]]
    content_type: str

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.form)


@dataclass
class FakeStripe:
    """A Stripe Checkout stand-in; see the module docstring."""

    api_key: str = field(default_factory=lambda: "sk_test_" + secrets.token_hex(12))
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(16))
    fail_status: int | None = None
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    _by_idempotency_key: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _url: str | None = None

    # ── lifecycle ──────────────────────────────────────────────────────────────────────

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:54321 (after `start()`)."""
        if self._url is None:
            raise RuntimeError("the fake Stripe is not started")
        return self._url

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self._create_session)
        app.router.add_get("/pay/{session_id}", self._pay_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeStripe:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # ── webhooks ───────────────────────────────────────────────────────────────────────

    def sign(self, body: bytes, t: int, *, secret: str | None = None) -> str:
        """Stripe's `Stripe-Signature`: HMAC-SHA256 keyed with the whole `whsec_` string over
        "{t}.{body}", hex, as `t=...,v1=...`."""
        key = (secret if secret is not None else self.webhook_secret).encode()
        digest = hmac.new(key, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
        return f"t={t},v1={digest}"

    def event_for(
        self,
        session_id: str,
        paid: bool = True,
        *,
        event_type: str | None = None,
        event_id: str | None = None,
        now: float | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, str]:
        """The webhook body and `Stripe-Signature` header Stripe would send for a stored
        session: `checkout.session.completed` (paid) or `checkout.session.expired`, unless
        `event_type` says otherwise."""
        session = dict(self.sessions[session_id])
        t = int(time.time() if now is None else now)
        if event_type is None:
            event_type = "checkout.session.completed" if paid else "checkout.session.expired"
        session["payment_status"] = "paid" if paid else "unpaid"
        session["status"] = "complete" if paid else "expired"
        event = {
            "id": event_id or "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2024-06-20",
            "created": t,
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": session},
        }
        body = json.dumps(event).encode()
        return body, self.sign(body, t, secret=secret)

    # ── handlers ───────────────────────────────────────────────────────────────────────

    async def _create_session(self, request: web.Request) -> web.Response:
        form = await request.post()
        pairs = [(k, v) for k, v in form.items() if isinstance(v, str)]
        self.requests.append(
            RecordedRequest(
                headers=dict(request.headers), form=pairs, content_type=request.content_type
            )
        )
        if self.fail_status is not None:
            kind = "api_error" if self.fail_status >= 500 else "invalid_request_error"
            return _error(self.fail_status, kind, "the fake was told to fail")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            # Stripe's real answer quotes a masked key; this fake quotes it whole, so a leak
            # into our errors or logs would show in the tests.
            return _error(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {request.headers.get('Authorization', '')}",
            )
        fields = dict(pairs)
        for name in REQUIRED_FIELDS:
            if not fields.get(name):
                return _error(400, "invalid_request_error", f"Missing {name}", param=name)
        if fields["mode"] != "payment":
            return _error(400, "invalid_request_error", "bad mode", param="mode")
        unit_amount = fields["line_items[0][price_data][unit_amount]"]
        if not unit_amount.isdigit() or int(unit_amount) <= 0:
            return _error(400, "invalid_request_error", "bad amount", param="unit_amount")
        quantity = int(fields["line_items[0][quantity]"])

        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self._by_idempotency_key:
            return web.json_response(self.sessions[self._by_idempotency_key[key]])

        session_id = "cs_test_" + secrets.token_hex(16)
        metadata = {k[len("metadata[") : -1]: v for k, v in pairs if k.startswith("metadata[")}
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "amount_total": int(unit_amount) * quantity,
            "currency": fields["line_items[0][price_data][currency]"],
            "client_reference_id": fields.get("client_reference_id"),
            "metadata": metadata,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": fields["success_url"],
            "cancel_url": fields["cancel_url"],
            "url": f"{self.url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        if key is not None:
            self._by_idempotency_key[key] = session_id
        return web.json_response(session)

    async def _pay_page(self, request: web.Request) -> web.Response:
        if request.match_info["session_id"] not in self.sessions:
            return web.Response(status=404)
        return web.Response(
            text="<html><body>fake Stripe checkout</body></html>", content_type="text/html"
        )


def _error(status: int, kind: str, message: str, *, param: str | None = None) -> web.Response:
    error: dict[str, Any] = {"type": kind, "message": message}
    if param is not None:
        error["param"] = param
        error["code"] = "parameter_missing"
    return web.json_response({"error": error}, status=status)
