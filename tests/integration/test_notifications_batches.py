"""Notifications record a batch of events in one transaction (issue 20), idempotent by the
runtime's envelope ids: a batch handled twice, or a batch that committed and then crashed
and was handled again one by one, gives every recipient each notice once, in event order,
and each delivery of another channel once. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
import pytest

from actors.auth import messages as auth_messages
from actors.auth.messages import Contacts
from actors.notifications import messages as notification_messages
from actors.notifications import store
from actors.notifications.actor import Notifications
from actors.notifications.channels.sms import LogSms
from actors.notifications.channels.telegram import TelegramChannel
from actors.notifications.deliveries import Deliveries
from actors.notifications.messages import NOTIFICATIONS, ListNotifications, notifications_key
from actors.payments.messages import TransferCompleted
from actors.runtime import ActorSystem, Message, Outbox, PgDeadLetterStore
from actors.splits.messages import ExpenseAdded, Share
from splitgo.db import apply_schema
from tests.integration.test_notifications_channels_actor import (
    FAST,
    PEOPLE,
    TOKENS,
    Outbox_,
    eventually,
)
from tests.support.fake_telegram import FakeTelegram
from transport import Codec, Envelope, MemoryTransport

pytestmark = pytest.mark.integration


@dataclass
class Shop:
    """A notifications actor on real PostgreSQL, its instances at hand."""

    system: ActorSystem
    pool: asyncpg.Pool
    instances: list[Notifications] = field(default_factory=list)
    pushed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def envelope(self, body: Message, envelope_id: str) -> Envelope:
        shard = self.system.ref(NOTIFICATIONS)._route.shard_for(body)
        return Envelope(id=envelope_id, target=NOTIFICATIONS, shard=shard, kind="tell", body=body)

    async def feed(self, user_id: str) -> list[Any]:
        # a shard redoing a crashed batch one by one can keep an ask waiting past the
        # default 5 s on a loaded machine: wait for it rather than fail
        page = await self.system.ref(NOTIFICATIONS).ask(
            ListNotifications(user_id=user_id, limit=200), timeout=30.0
        )
        return list(reversed(page.items))  # oldest first

    async def deliveries(self, user_id: str) -> list[store.Delivery]:
        return await store.list_deliveries(self.pool, user_id=user_id, limit=500)


@pytest.fixture
async def shop(pool: asyncpg.Pool) -> AsyncIterator[Shop]:
    await apply_schema(pool)
    async with FakeTelegram() as fake:
        telegram = TelegramChannel(TOKENS, api_url=fake.base_url)
        codec = Codec()
        codec.register_module(auth_messages)
        codec.register_module(notification_messages)
        system = ActorSystem(
            MemoryTransport(node_id="batches", codec=codec),
            codec=codec,
            dead_letters=PgDeadLetterStore(pool),
            outbox=Outbox(pool, interval=0.05),
        )
        await system.start()
        shop = Shop(system, pool)

        async def push(user_id: str, frame: bytes) -> None:
            shop.pushed.append((user_id, msgspec.json.decode(frame)))

        async def contacts(user_id: str) -> Contacts | None:
            return PEOPLE.get(user_id)

        def build() -> Notifications:
            made = Notifications(
                pool,
                Outbox_(),
                public_url="http://127.0.0.1:8080",
                telegram=telegram,
                sms=LogSms(),
                push=push,
                contacts=contacts,
                backoff=FAST,
                max_attempts=3,
            )
            shop.instances.append(made)
            return made

        system.spawn(Notifications, NOTIFICATIONS, factory=build, shards=1, key=notifications_key)
        try:
            yield shop
        finally:
            await system.stop(1.0)
            await telegram.close()


def paid(n: int) -> TransferCompleted:
    return TransferCompleted(
        transfer_id=f"t-{n}",
        from_user_id="amy",
        to_user_id="bob",
        amount=100 + n,
        currency="EUR",
        kind="p2p",
    )


def lunch(n: int) -> ExpenseAdded:
    """Cat's expense shared with Amy and Bob (each in-app and on Telegram)."""
    return ExpenseAdded(
        group_id="g1",
        group_name="Trip",
        expense_id=f"e-{n}",
        description=f"Lunch {n}",
        amount=900,
        currency="EUR",
        created_by="cat",
        shares=[
            Share(user_id="amy", amount=300),
            Share(user_id="bob", amount=300),
            Share(user_id="cat", amount=300),
        ],
    )


def mixed(shop: Shop, prefix: str) -> list[Envelope]:
    """Transfers and expenses interleaved: each event a few recipients."""
    bodies: list[Message] = []
    for n in range(4):
        bodies += [paid(n), lunch(n)]
    return [shop.envelope(body, f"{prefix}-{n}") for n, body in enumerate(bodies)]


def order_of(items: Sequence[Any]) -> list[str]:
    """The transfer or expense each feed item is about, in feed order."""
    return [item.data.get("transfer_id") or item.data["expense_id"] for item in items]


async def test_a_batch_handled_twice_makes_each_notice_once(shop: Shop) -> None:
    """The same batch of eight events handed to the shard twice stores each recipient's
    notices once, in the batch's order, and makes each Telegram delivery once."""
    await eventually(_started(shop))
    actor = shop.instances[0]
    batch = mixed(shop, "twice")
    assert await actor.handle_envelopes(batch) == [None] * len(batch)
    assert await actor.handle_envelopes(batch) == [None] * len(batch)

    expected_amy = ["t-0", "e-0", "t-1", "e-1", "t-2", "e-2", "t-3", "e-3"]
    assert order_of(await shop.feed("amy")) == expected_amy
    assert order_of(await shop.feed("bob")) == expected_amy
    assert await shop.feed("cat") == []  # who added the expenses hears nothing
    telegram = [d for d in await shop.deliveries("amy") if d.channel == "telegram"]
    assert sorted(d.event_id for d in telegram) == [f"twice-{n}" for n in range(8)]
    in_app = [d for d in await shop.deliveries("bob") if d.channel == "inapp"]
    assert len(in_app) == 8
    assert {d.status for d in in_app} == {"sent"}
    assert sorted(user for user, _ in shop.pushed) == ["amy"] * 8 + ["bob"] * 8


async def test_a_copy_within_one_batch_counts_once(shop: Shop) -> None:
    """An envelope a transport delivered twice into one batch is recorded once."""
    await eventually(_started(shop))
    one = shop.envelope(paid(7), "copy-1")
    await shop.instances[0].handle_envelopes([one, one, shop.envelope(paid(8), "copy-2")])
    assert order_of(await shop.feed("bob")) == ["t-7", "t-8"]


async def test_a_batch_that_crashed_after_its_commit_is_handled_again_once(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shard's batch commits and then crashes: the runtime hands each event again one
    by one (each finds its inbox mark), so nobody gets a notice twice; later events are
    recorded as usual."""
    real = Deliveries.record_run
    crashed: list[int] = []

    async def crash_after_commit(self: Deliveries, envelopes: Sequence[Envelope]) -> None:
        await real(self, envelopes)
        if not crashed:
            crashed.append(len(envelopes))
            raise RuntimeError("the node fails after the batch's commit")

    monkeypatch.setattr(Deliveries, "record_run", crash_after_commit)
    for envelope in mixed(shop, "crash"):
        await shop.system.transport.send(envelope)

    async def all_there() -> bool:
        return len(await shop.feed("bob")) == 8

    await eventually(all_there, timeout=60.0)  # a restart and a redo, on a loaded machine
    assert crashed  # the first run crashed after committing
    expected = ["t-0", "e-0", "t-1", "e-1", "t-2", "e-2", "t-3", "e-3"]
    assert order_of(await shop.feed("amy")) == expected
    assert order_of(await shop.feed("bob")) == expected
    status = shop.system.status()[0]
    assert status.restarts == 1
    assert status.dead_lettered == 0
    telegram = [d for d in await shop.deliveries("amy") if d.channel == "telegram"]
    assert len(telegram) == 8
    await eventually(_telegram_done(shop))


def _started(shop: Shop) -> Any:
    async def check() -> bool:
        return bool(shop.instances) and shop.system.status()[0].state == "running"

    return check


def _telegram_done(shop: Shop) -> Any:
    async def check() -> bool:
        deliveries = await shop.deliveries("amy")
        return all(d.status == "sent" for d in deliveries if d.channel == "telegram")

    return check
