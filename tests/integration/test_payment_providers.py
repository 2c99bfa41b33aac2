"""The payment provider adapters over real HTTP: the sandbox, and Stripe against a fake Stripe.

No database: the payments actor's storage and crediting are tested with the actor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from actors.payments.messages import InvalidSignature, UnknownPaymentProvider, format_money
from actors.payments.providers import (
    SIGNATURE_HEADER,
    Checkout,
    PaymentProvider,
    ProviderEvent,
    ProviderUnavailable,
    provider_named,
    sign_payload,
)
from actors.payments.providers import stripe as stripe_module
from actors.payments.providers.sandbox import (
    SandboxCheckout,
    SandboxProvider,
    deliver_to_self,
    render_checkout_page,
)
from actors.payments.providers.stripe import StripeProvider
from tests.support.fake_stripe import FakeStripe

SANDBOX_SECRET = b"sandbox-test-secret"
PUBLIC_URL = "https://splitgo.test"
SUCCESS_URL = "https://splitgo.test/wallet?top_up=tu_1"
CANCEL_URL = "https://splitgo.test/wallet?cancelled=1"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as server:
        yield server


@pytest.fixture
def stripe(fake_stripe: FakeStripe, http: aiohttp.ClientSession) -> StripeProvider:
    return StripeProvider(
        fake_stripe.api_key, fake_stripe.webhook_secret, base_url=fake_stripe.url, http=http
    )


def sandbox() -> SandboxProvider:
    return SandboxProvider(SANDBOX_SECRET, PUBLIC_URL + "/")


async def open_checkout(provider: PaymentProvider, **overrides: object) -> Checkout:
    args: dict[str, object] = {
        "top_up_id": "tu_1",
        "amount": 1234,
        "currency": "EUR",
        "user_id": "u_1",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
    }
    args.update(overrides)
    return await provider.create_checkout(**args)  # type: ignore[arg-type]


def test_both_adapters_satisfy_the_port(stripe: StripeProvider) -> None:
    """Both the sandbox and Stripe adapters are found by name, and an unknown name raises
    UnknownPaymentProvider."""
    providers: dict[str, PaymentProvider] = {"sandbox": sandbox(), "stripe": stripe}
    assert provider_named(providers, "sandbox").name == "sandbox"
    assert provider_named(providers, "stripe").name == "stripe"
    with pytest.raises(UnknownPaymentProvider):
        provider_named(providers, "paypal")


def test_reprs_hide_secrets(stripe: StripeProvider, fake_stripe: FakeStripe) -> None:
    """Neither adapter's repr shows its API key or webhook secret."""
    assert "sandbox-test-secret" not in repr(sandbox())
    assert fake_stripe.api_key not in repr(stripe)
    assert fake_stripe.webhook_secret not in repr(stripe)


# ── sandbox ────────────────────────────────────────────────────────────────────────────


async def test_sandbox_checkout_url_points_at_the_nodes_page() -> None:
    """Each sandbox checkout gets a fresh cs_sandbox_ id and a URL to the node's own checkout
    page."""
    provider = sandbox()
    first = await open_checkout(provider)
    second = await open_checkout(provider)
    assert first.provider_checkout_id.startswith("cs_sandbox_")
    assert first.url == f"{PUBLIC_URL}/sandbox/checkout/{first.provider_checkout_id}"
    assert first.provider_checkout_id != second.provider_checkout_id


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1234, "EUR", "12.34 EUR"),
        (5, "usd", "0.05 USD"),
        (500, "JPY", "500 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (100_000_000, "EUR", "1000000.00 EUR"),
    ],
)
def test_amounts_are_shown_by_currency_exponent(amount: int, currency: str, shown: str) -> None:
    """Amounts are formatted with the currency's own number of decimals and an upper-cased code, and
    shown so on the checkout page."""
    assert format_money(amount, currency) == shown
    assert shown in render_checkout_page("cs_sandbox_x", amount, currency)


def test_checkout_page_has_pay_and_decline_forms() -> None:
    """The sandbox checkout page has Pay and Decline forms posting to the checkout's own paths and
    shows the amount."""
    page = sandbox().render_checkout_page("cs_sandbox_abc", 1234, "EUR")
    assert 'method="post" action="/sandbox/checkout/cs_sandbox_abc/pay"' in page
    assert 'method="post" action="/sandbox/checkout/cs_sandbox_abc/decline"' in page
    assert ">Pay</button>" in page
    assert ">Decline</button>" in page
    assert "12.34 EUR" in page


def test_checkout_page_escapes_what_it_shows() -> None:
    """The checkout page HTML-escapes the id, currency and action URL, and the default action
    percent-encodes the id into one path segment."""
    nasty = '"><script>alert(1)</script>'
    page = render_checkout_page(nasty, 100, "<b>EUR", action_url=f"/x/{nasty}")
    assert "<script>" not in page
    assert "<b>" not in page
    assert "&lt;script&gt;" in page
    assert 'action="/x/&quot;&gt;&lt;script&gt;' in page
    # The default action quotes the id into a single path segment.
    default = render_checkout_page("a/b?c", 100, "EUR")
    assert 'action="/sandbox/checkout/a%2Fb%3Fc/pay"' in default


def checkout_for(checkout: Checkout) -> SandboxCheckout:
    return SandboxCheckout(
        checkout_id=checkout.provider_checkout_id,
        top_up_id="tu_1",
        user_id="u_1",
        amount=1234,
        currency="EUR",
    )


@pytest.mark.parametrize(
    ("paid", "kind"), [(True, "checkout.completed"), (False, "checkout.failed")]
)
async def test_sandbox_webhook_round_trip(paid: bool, kind: str) -> None:
    """A signed sandbox webhook for a paid or declined checkout parses to a completed or failed
    event carrying the checkout's details."""
    provider = sandbox()
    checkout = await open_checkout(provider)
    now = time.time()
    body, header = provider.webhook_for(checkout_for(checkout), paid, now)
    assert header.startswith(f"t={int(now)},v1=")
    event = provider.parse_webhook(body, header, now=now + 5)
    assert event == ProviderEvent(
        event_id=event.event_id,
        kind=kind,  # type: ignore[arg-type]
        checkout_id=checkout.provider_checkout_id,
        top_up_id="tu_1",
        amount=1234,
        currency="EUR",
        event_type=event.event_type,
    )
    assert event.event_id.startswith("evt_")


async def test_sandbox_repeated_press_sends_the_same_event_id() -> None:
    """Pressing Pay again sends the same event id, while Decline sends a different one."""
    provider = sandbox()
    details = checkout_for(await open_checkout(provider))
    now = time.time()
    pay_1 = provider.parse_webhook(*provider.webhook_for(details, True, now), now=now)
    pay_2 = provider.parse_webhook(*provider.webhook_for(details, True, now + 1), now=now)
    decline = provider.parse_webhook(*provider.webhook_for(details, False, now), now=now)
    assert pay_1.event_id == pay_2.event_id  # credited once however often Pay is pressed
    assert decline.event_id != pay_1.event_id


async def test_sandbox_webhook_is_refused_when_tampered_stale_or_foreign() -> None:
    """A sandbox webhook with a changed body, a stale timestamp, no signature, or another secret is
    refused."""
    provider = sandbox()
    details = checkout_for(await open_checkout(provider))
    now = time.time()
    body, header = provider.webhook_for(details, True, now)
    with pytest.raises(InvalidSignature):
        provider.parse_webhook(body.replace(b"1234", b"9999"), header, now=now)
    with pytest.raises(InvalidSignature):
        provider.parse_webhook(body, header, now=now + 301)
    with pytest.raises(InvalidSignature):
        provider.parse_webhook(body, "", now=now)
    other = SandboxProvider(b"another-secret", PUBLIC_URL)
    with pytest.raises(InvalidSignature):
        other.parse_webhook(body, header, now=now)


def test_sandbox_refuses_an_empty_secret() -> None:
    """A sandbox provider with an empty secret is refused with a ValueError."""
    with pytest.raises(ValueError, match="secret"):
        SandboxProvider(b"", PUBLIC_URL)


@pytest.fixture
async def webhook_endpoint() -> AsyncIterator[tuple[str, list[ProviderEvent]]]:
    """A stand-in for the node's webhook route: verifies with the sandbox, 400 if it fails."""
    provider = sandbox()
    received: list[ProviderEvent] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = provider.parse_webhook(
                body, request.headers.get(SIGNATURE_HEADER, ""), now=time.time()
            )
        except InvalidSignature:
            return web.json_response({"code": "invalid_signature"}, status=400)
        received.append(event)
        return web.json_response({"event_id": event.event_id, "applied": True})

    app = web.Application()
    app.router.add_post("/api/v1/payments/webhooks/sandbox", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/api/v1/payments/webhooks/sandbox", received
    finally:
        await runner.cleanup()


async def test_deliver_to_self_posts_the_signed_webhook(
    http: aiohttp.ClientSession, webhook_endpoint: tuple[str, list[ProviderEvent]]
) -> None:
    """deliver_to_self posts the signed webhook to the node, which accepts it with a 200 and sees a
    completed checkout."""
    url, received = webhook_endpoint
    provider = sandbox()
    details = checkout_for(await open_checkout(provider))
    body, header = provider.webhook_for(details, True, time.time())
    assert await deliver_to_self(http, url, body, header) == 200
    assert [e.kind for e in received] == ["checkout.completed"]
    assert received[0].top_up_id == "tu_1"


async def test_deliver_to_self_reports_refusal_and_unreachable(
    http: aiohttp.ClientSession, webhook_endpoint: tuple[str, list[ProviderEvent]]
) -> None:
    """deliver_to_self raises ProviderUnavailable when the webhook is refused, with its status, or
    when the endpoint cannot be reached."""
    url, received = webhook_endpoint
    body = b'{"id":"evt_x"}'
    forged = sign_payload(b"not-the-sandbox-secret", body, int(time.time()))
    with pytest.raises(ProviderUnavailable) as refused:
        await deliver_to_self(http, url, body, forged)
    assert refused.value.details["status"] == 400
    assert received == []
    with pytest.raises(ProviderUnavailable):
        await deliver_to_self(http, "http://127.0.0.1:9/nowhere", body, forged)


# ── stripe ─────────────────────────────────────────────────────────────────────────────


async def test_stripe_create_checkout_sends_the_right_form_and_headers(
    stripe: StripeProvider, fake_stripe: FakeStripe
) -> None:
    """Creating a Stripe checkout posts the expected form with the bearer key and the top-up as
    idempotency key, and returns a working session URL."""
    checkout = await open_checkout(stripe)
    assert checkout.provider_checkout_id.startswith("cs_test_")
    assert checkout.url == f"{fake_stripe.url}/pay/{checkout.provider_checkout_id}"

    [request] = fake_stripe.requests
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.headers["Authorization"] == f"Bearer {fake_stripe.api_key}"
    assert request.headers["Idempotency-Key"] == "tu_1"
    assert request.fields == {
        "mode": "payment",
        "line_items[0][price_data][currency]": "eur",
        "line_items[0][price_data][unit_amount]": "1234",
        "line_items[0][price_data][product_data][name]": "splitgo wallet top-up",
        "line_items[0][quantity]": "1",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "client_reference_id": "tu_1",
        "metadata[top_up_id]": "tu_1",
        "metadata[user_id]": "u_1",
    }
    session = fake_stripe.sessions[checkout.provider_checkout_id]
    assert session["amount_total"] == 1234
    assert session["metadata"] == {"top_up_id": "tu_1", "user_id": "u_1"}

    async with aiohttp.ClientSession() as browser, browser.get(checkout.url) as page:
        assert page.status == 200


async def test_stripe_retried_create_returns_the_same_session(
    stripe: StripeProvider, fake_stripe: FakeStripe
) -> None:
    """Creating a checkout again for the same top-up returns the same Stripe session, while another
    top-up gets a new one."""
    first = await open_checkout(stripe)
    again = await open_checkout(stripe)
    other = await open_checkout(stripe, top_up_id="tu_2")
    assert again == first
    assert other.provider_checkout_id != first.provider_checkout_id
    assert len(fake_stripe.sessions) == 2


@pytest.mark.parametrize("status", [500, 401, 400, 429])
async def test_stripe_api_errors_become_provider_unavailable(
    stripe: StripeProvider, fake_stripe: FakeStripe, status: int
) -> None:
    """A Stripe API error becomes ProviderUnavailable carrying the status and provider, with the API
    key kept out of the error and the logs."""
    fake_stripe.fail_status = status
    with capture_logs() as logs, pytest.raises(ProviderUnavailable) as exc:
        await open_checkout(stripe)
    assert exc.value.category == "unavailable"
    assert exc.value.details["status"] == status
    assert exc.value.details["provider"] == "stripe"
    assert fake_stripe.api_key not in repr(exc.value.details) + exc.value.message
    assert fake_stripe.api_key not in repr(logs)


async def test_stripe_wrong_key_is_unavailable_without_leaking_the_key(
    fake_stripe: FakeStripe, http: aiohttp.ClientSession
) -> None:
    """A wrong Stripe key gives a 401 ProviderUnavailable whose message, details, cause and logs
    never contain the key."""
    wrong_key = "sk_test_wrong_key_123"
    provider = StripeProvider(
        wrong_key, fake_stripe.webhook_secret, base_url=fake_stripe.url, http=http
    )
    with capture_logs() as logs, pytest.raises(ProviderUnavailable) as exc:
        await open_checkout(provider)
    # The fake echoes the whole key in its error message; none of it may reach us.
    assert exc.value.details == {
        "provider": "stripe",
        "status": 401,
        "error_type": "invalid_request_error",
    }
    assert wrong_key not in str(exc.value) + repr(exc.value.details)
    assert wrong_key not in repr(logs)
    assert exc.value.__cause__ is None


async def test_stripe_unreachable_or_nonsense_is_unavailable(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable Stripe, a non-JSON answer, or a reply slower than the timeout each raise
    ProviderUnavailable."""
    nowhere = StripeProvider("sk_test_x", "whsec_x", base_url="http://127.0.0.1:9", http=http)
    with pytest.raises(ProviderUnavailable, match="could not reach"):
        await open_checkout(nowhere)

    async def nonsense(_request: web.Request) -> web.Response:
        return web.Response(text="<html>gateway</html>")

    released = asyncio.Event()

    async def slow(_request: web.Request) -> web.Response:
        # answers only once the test is over: well past the timeout, and the server's
        # cleanup (which waits for the requests in hand) does not wait out a fixed sleep
        await released.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/nonsense/v1/checkout/sessions", nonsense)
    app.router.add_post("/slow/v1/checkout/sessions", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        odd = StripeProvider(
            "sk_test_x", "whsec_x", base_url=f"http://{host}:{port}/nonsense", http=http
        )
        with pytest.raises(ProviderUnavailable, match="unexpected"):
            await open_checkout(odd)
        monkeypatch.setattr(stripe_module, "HTTP_TIMEOUT_SECONDS", 0.2)
        late = StripeProvider(
            "sk_test_x", "whsec_x", base_url=f"http://{host}:{port}/slow", http=http
        )
        with pytest.raises(ProviderUnavailable, match="in time"):
            await open_checkout(late)
    finally:
        released.set()
        await runner.cleanup()


async def test_stripe_events_verify_and_map(
    stripe: StripeProvider, fake_stripe: FakeStripe
) -> None:
    """Signed Stripe events verify and map to completed, failed or ignored with the checkout's
    details, and a resent event keeps its id."""
    checkout = await open_checkout(stripe, amount=500, currency="JPY")
    session_id = checkout.provider_checkout_id

    body, header = fake_stripe.event_for(session_id, paid=True)
    event = stripe.parse_webhook(body, header, now=time.time())
    assert (event.kind, event.checkout_id, event.top_up_id, event.amount, event.currency) == (
        "checkout.completed",
        session_id,
        "tu_1",
        500,
        "JPY",
    )
    # A resent event verifies again with the same id: the actor credits per event id.
    again = stripe.parse_webhook(body, header, now=time.time())
    assert again.event_id == event.event_id

    body, header = fake_stripe.event_for(session_id, paid=False)
    assert stripe.parse_webhook(body, header, now=time.time()).kind == "checkout.failed"

    body, header = fake_stripe.event_for(
        session_id, paid=False, event_type="checkout.session.async_payment_failed"
    )
    assert stripe.parse_webhook(body, header, now=time.time()).kind == "checkout.failed"

    body, header = fake_stripe.event_for(session_id, event_type="customer.created")
    ignored = stripe.parse_webhook(body, header, now=time.time())
    assert (ignored.kind, ignored.event_type) == ("ignored", "customer.created")


async def test_stripe_events_with_bad_signatures_are_refused(
    stripe: StripeProvider, fake_stripe: FakeStripe
) -> None:
    """Stripe events signed with another secret, stale, tampered with or missing the signature are
    refused, and sandbox and Stripe secrets do not open each other's webhooks."""
    session_id = (await open_checkout(stripe)).provider_checkout_id
    now = time.time()

    body, header = fake_stripe.event_for(session_id, secret="whsec_someone_else")
    with pytest.raises(InvalidSignature):
        stripe.parse_webhook(body, header, now=now)

    body, header = fake_stripe.event_for(session_id, now=now - 301)
    with pytest.raises(InvalidSignature):
        stripe.parse_webhook(body, header, now=now)

    body, header = fake_stripe.event_for(session_id)
    with pytest.raises(InvalidSignature):
        stripe.parse_webhook(body.replace(b'"paid"', b'"unpaid"'), header, now=now)
    with pytest.raises(InvalidSignature):
        stripe.parse_webhook(body, header.split(",")[0], now=now)

    # The sandbox's secret does not open Stripe's door, nor the other way round.
    sandbox_body, sandbox_header = sandbox().webhook_for(
        SandboxCheckout(session_id, "tu_1", "u_1", 1234, "EUR"), True, now
    )
    with pytest.raises(InvalidSignature):
        stripe.parse_webhook(sandbox_body, sandbox_header, now=now)
    with pytest.raises(InvalidSignature):
        sandbox().parse_webhook(body, header, now=now)
