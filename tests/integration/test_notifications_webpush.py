"""Web Push as a notification channel: the notifications actor encrypts each notice for
every browser a user subscribed and posts it, VAPID-signed, to a fake push service over
HTTP that checks the signature and decrypts what it receives as the browser would. A
subscription the push service calls gone is forgotten; other failures are retried.
Real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from actors.auth import messages as auth_messages
from actors.auth.messages import Contacts
from actors.notifications import messages as notification_messages
from actors.notifications import store
from actors.notifications.actor import Notifications
from actors.notifications.channels.email import Mail
from actors.notifications.channels.webpush import VapidKeys, WebPushChannel
from actors.notifications.messages import (
    NOTIFICATIONS,
    AddPushSubscription,
    GetPreferences,
    GetPushKey,
    InvalidPushSubscription,
    ListPushSubscriptions,
    PushSubscriptionNotFound,
    RemovePushSubscription,
    SetPreferences,
    notifications_key,
)
from actors.runtime import ActorSystem, Backoff, Message, Outbox, PgDeadLetterStore
from splitgo.db import apply_schema
from tests.integration.test_notifications_channels_actor import dinner
from tests.support.fake_push import FakePush
from transport import Codec, Envelope, MemoryTransport

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


class Mails(list[Mail]):
    """Stands in for SMTP: keeps every mail."""

    async def send(self, mail: Mail) -> str:
        self.append(mail)
        return "250 queued"


@dataclass
class Harness:
    system: ActorSystem
    push: FakePush
    keys: VapidKeys
    pool: asyncpg.Pool

    async def event(self, body: Message, envelope_id: str) -> None:
        shard = self.system.ref(NOTIFICATIONS)._route.shard_for(body)
        await self.system.transport.send(
            Envelope(id=envelope_id, target=NOTIFICATIONS, shard=shard, kind="tell", body=body)
        )

    async def ask(self, message: Message) -> Any:
        return await self.system.ref(NOTIFICATIONS).ask(message)

    async def subscribe(self, user_id: str, label: str = "Firefox on Linux") -> dict[str, Any]:
        browser = self.push.subscribe()
        await self.ask(
            AddPushSubscription(
                user_id=user_id,
                endpoint=browser["endpoint"],
                p256dh=browser["keys"]["p256dh"],
                auth=browser["keys"]["auth"],
                label=label,
            )
        )
        return browser

    async def webpush_delivery(self, user_id: str) -> store.Delivery | None:
        found = await store.list_deliveries(self.pool, user_id=user_id)
        return next((d for d in found if d.channel == "webpush"), None)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    await apply_schema(pool)
    keys = VapidKeys.generate()
    async with FakePush(vapid_public_key=keys.public_key) as push:
        channel = WebPushChannel(keys, subject="mailto:ops@example.com", allow_http=True)
        codec = Codec()
        codec.register_module(auth_messages)
        codec.register_module(notification_messages)
        system = ActorSystem(
            MemoryTransport(node_id="notify", codec=codec),
            codec=codec,
            dead_letters=PgDeadLetterStore(pool),
            outbox=Outbox(pool, interval=0.05),
        )
        await system.start()

        async def contacts(user_id: str) -> Contacts | None:
            return Contacts(
                user_id=user_id, email=f"{user_id}@example.com", email_verified=True, name=user_id
            )

        system.spawn(
            Notifications,
            NOTIFICATIONS,
            factory=lambda: Notifications(
                pool,
                Mails(),
                public_url="http://127.0.0.1:8080",
                webpush=channel,
                contacts=contacts,
                backoff=FAST,
                max_attempts=3,
            ),
            shards=2,
            key=notifications_key,
        )
        try:
            yield Harness(system, push, keys, pool)
        finally:
            await system.stop(1.0)
            await channel.close()


async def test_a_notice_reaches_every_subscribed_browser_encrypted_and_signed(
    harness: Harness,
) -> None:
    """Amy's two browsers each receive Bob's expense: the fake push service verified the
    VAPID JWT against the node's key and decrypted the body with each browser's own key,
    and it says the notice's title, text and the page to open."""
    phone = await harness.subscribe("amy", "Chrome on Android")
    laptop = await harness.subscribe("amy", "Firefox on Linux")
    await harness.event(dinner(), "ev-1")
    first = await harness.push.wait_received(lambda m: phone["endpoint"].endswith(m.token))
    second = await harness.push.wait_received(lambda m: laptop["endpoint"].endswith(m.token))
    for message in (first, second):
        assert message.payload["title"] == "New expense in Trip"
        assert "45.00 EUR" in message.payload["body"]
        assert message.payload["url"] == "/groups/g1/expenses/e1"
        assert message.claims["aud"] == harness.push.base_url
        assert message.claims["sub"] == "mailto:ops@example.com"
        assert message.headers["Urgency"] == "normal"
        assert int(message.headers["TTL"]) > 0
    assert harness.push.refused == []

    async def sent() -> bool:
        delivery = await harness.webpush_delivery("amy")
        return delivery is not None and delivery.status == "sent"

    await eventually(sent)
    delivery = await harness.webpush_delivery("amy")
    assert delivery is not None
    assert (delivery.last_answer or "").startswith("2 of 2 accepted")
    # Bob added it (nobody tells him) and has no browser subscribed anyway
    assert await harness.webpush_delivery("bob") is None


async def test_a_gone_subscription_is_forgotten_and_the_delivery_fails(harness: Harness) -> None:
    """A 410 from the push service removes that subscription at once; with no other
    browser the delivery fails for good, and the next notice makes no Web Push delivery."""
    browser = await harness.subscribe("amy")
    harness.push.answer(browser["endpoint"], 410)
    await harness.event(dinner(), "ev-2")

    async def failed() -> bool:
        delivery = await harness.webpush_delivery("amy")
        return delivery is not None and delivery.status == "failed"

    await eventually(failed)
    delivery = await harness.webpush_delivery("amy")
    assert delivery is not None
    assert delivery.attempts == 1
    assert "410" in (delivery.last_answer or "")
    listed = await harness.ask(ListPushSubscriptions(user_id="amy"))
    assert listed.items == []
    await harness.event(dinner("e2"), "ev-3")
    await asyncio.sleep(0.3)
    deliveries = await store.list_deliveries(harness.pool, user_id="amy")
    assert [d.channel for d in deliveries if d.event_id == "ev-3"] == ["inapp"]


async def test_a_push_service_outage_is_retried(harness: Harness) -> None:
    """A 503 is a failed try, not the end: the retry after the backoff gets through, and
    the subscription is kept."""
    browser = await harness.subscribe("amy")
    harness.push.answer(browser["endpoint"], 503)
    await harness.event(dinner(), "ev-4")
    await harness.push.wait_calls(1)
    harness.push.answer(browser["endpoint"], None)
    message = await harness.push.wait_received(lambda m: True)
    assert message.payload["title"] == "New expense in Trip"

    async def sent() -> bool:
        delivery = await harness.webpush_delivery("amy")
        return delivery is not None and delivery.status == "sent"

    await eventually(sent)
    delivery = await harness.webpush_delivery("amy")
    assert delivery is not None
    assert delivery.attempts >= 2
    assert len((await harness.ask(ListPushSubscriptions(user_id="amy"))).items) == 1


async def test_the_webpush_switch_is_a_preference_like_any_channel(harness: Harness) -> None:
    """Web Push is on by default for splits; switched off, a subscribed browser gets
    nothing while the feed still does."""
    chosen = await harness.ask(GetPreferences(user_id="amy"))
    assert chosen.categories["splits"]["webpush"] is True
    await harness.subscribe("amy")
    await harness.ask(SetPreferences(user_id="amy", changes={"splits": {"webpush": False}}))
    await harness.event(dinner(), "ev-5")

    async def in_app() -> bool:
        deliveries = await store.list_deliveries(harness.pool, user_id="amy")
        return any(d.channel == "inapp" and d.status == "sent" for d in deliveries)

    await eventually(in_app)
    assert await harness.webpush_delivery("amy") is None
    assert harness.push.received == []


async def test_subscriptions_are_checked_listed_and_removed_per_user(harness: Harness) -> None:
    """The key is the node's; keys that are not a P-256 point are refused naming the
    field; the same endpoint again is one subscription; only its owner removes it."""
    key = await harness.ask(GetPushKey())
    assert key.public_key == harness.keys.public_key
    browser = harness.push.subscribe()
    with pytest.raises(InvalidPushSubscription) as refused:
        await harness.ask(
            AddPushSubscription(
                user_id="amy",
                endpoint=browser["endpoint"],
                p256dh="AAAA",
                auth=browser["keys"]["auth"],
            )
        )
    assert refused.value.details["field"] == "$.keys.p256dh"
    made = [
        await harness.ask(
            AddPushSubscription(
                user_id="amy",
                endpoint=browser["endpoint"],
                p256dh=browser["keys"]["p256dh"],
                auth=browser["keys"]["auth"],
                label=label,
            )
        )
        for label in ("Old name", "Chrome on Android")
    ]
    assert made[0].id == made[1].id
    listed = await harness.ask(ListPushSubscriptions(user_id="amy"))
    assert [(s.label, s.endpoint) for s in listed.items] == [
        ("Chrome on Android", browser["endpoint"])
    ]
    with pytest.raises(PushSubscriptionNotFound):
        await harness.ask(RemovePushSubscription(user_id="bob", subscription_id=made[0].id))
    await harness.ask(RemovePushSubscription(user_id="amy", subscription_id=made[0].id))
    assert (await harness.ask(ListPushSubscriptions(user_id="amy"))).items == []
