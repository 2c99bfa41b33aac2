"""The notifications actor on every channel: splits, payments and auth events reach the
right people over email, Telegram (a fake Bot API server), the in-app feed (pushed live)
and SMS, following their preferences, once per channel, with retries that honour the
provider's wait and do not hold up the other channels. Real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
import pytest

from actors.auth import messages as auth_messages
from actors.auth.messages import Contacts, PasswordChanged
from actors.notifications import messages as notification_messages
from actors.notifications import store
from actors.notifications.actor import Notifications
from actors.notifications.channels.email import Mail
from actors.notifications.channels.sms import LogSms
from actors.notifications.channels.telegram import TelegramChannel
from actors.notifications.messages import (
    NOTIFICATIONS,
    GetPreferences,
    InvalidPreference,
    ListNotifications,
    MarkAllRead,
    MarkRead,
    SetPreferences,
    notifications_key,
)
from actors.payments.messages import TopUpSucceeded
from actors.runtime import ActorSystem, Backoff, Message, Outbox, PgDeadLetterStore
from actors.splits.messages import ExpenseAdded, Share
from splitgo.db import apply_schema
from tests.support.fake_telegram import FakeTelegram
from transport import Codec, Envelope, MemoryTransport

TOKENS = ("111:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "222:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)
PEOPLE = {
    "amy": Contacts(
        user_id="amy",
        email="amy@example.com",
        email_verified=True,
        name="Amy",
        telegram_chat_id=1001,
        phone="+491701234567",
        phone_verified=True,
    ),
    "bob": Contacts(
        user_id="bob",
        email="bob@example.com",
        email_verified=True,
        name="Bob",
        telegram_chat_id=1002,
    ),
}


class Outbox_(list[Mail]):
    """Stands in for SMTP (the aiosmtpd tests cover the real server): keeps every mail."""

    async def send(self, mail: Mail) -> str:
        self.append(mail)
        return "250 queued"


@dataclass
class Harness:
    system: ActorSystem
    telegram: FakeTelegram
    mails: Outbox_
    sms: LogSms
    pool: asyncpg.Pool
    pushed: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def event(self, body: Message, envelope_id: str) -> None:
        shard = self.system.ref(NOTIFICATIONS)._route.shard_for(body)
        await self.system.transport.send(
            Envelope(id=envelope_id, target=NOTIFICATIONS, shard=shard, kind="tell", body=body)
        )

    async def ask(self, message: Message) -> Any:
        return await self.system.ref(NOTIFICATIONS).ask(message)

    async def channels_of(self, user_id: str) -> dict[str, str]:
        deliveries = await store.list_deliveries(self.pool, user_id=user_id)
        return {d.channel: d.status for d in deliveries}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


@pytest.fixture
async def harness(pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    await apply_schema(pool)
    async with FakeTelegram() as fake:
        telegram = TelegramChannel(TOKENS, api_url=fake.base_url)
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
        harness = Harness(system, fake, Outbox_(), LogSms(), pool)

        async def push(user_id: str, frame: bytes) -> None:
            harness.pushed.append((user_id, msgspec.json.decode(frame)))

        async def contacts(user_id: str) -> Contacts | None:
            return PEOPLE.get(user_id)

        system.spawn(
            Notifications,
            NOTIFICATIONS,
            factory=lambda: Notifications(
                pool,
                harness.mails,
                public_url="http://127.0.0.1:8080",
                telegram=telegram,
                sms=harness.sms,
                push=push,
                contacts=contacts,
                backoff=FAST,
                max_attempts=3,
            ),
            shards=2,
            key=notifications_key,
        )
        try:
            yield harness
        finally:
            await system.stop(1.0)
            await telegram.close()


def dinner(expense_id: str = "e1") -> ExpenseAdded:
    return ExpenseAdded(
        group_id="g1",
        group_name="Trip",
        expense_id=expense_id,
        description="Dinner",
        amount=9000,
        currency="EUR",
        created_by="bob",
        shares=[Share(user_id="amy", amount=4500), Share(user_id="bob", amount=4500)],
    )


async def test_an_expense_reaches_the_other_participant_on_their_default_channels(
    harness: Harness,
) -> None:
    """Amy hears of Bob's expense in-app (pushed live) and on Telegram, not by email (off by
    default for splits); Bob, who added it, hears nothing."""
    await harness.event(dinner(), "ev-1")
    sent = await harness.telegram.wait_sent(lambda m: m["chat_id"] == 1001)
    assert "Dinner" in sent["text"]
    assert "45.00 EUR" in sent["text"]
    assert sent["parse_mode"] == "HTML"

    async def pushed() -> bool:
        return bool(harness.pushed)

    await eventually(pushed)
    user_id, frame = harness.pushed[0]
    assert user_id == "amy"
    assert frame["type"] == "notification"
    assert frame["notification"]["title"] == "New expense in Trip"

    async def both_recorded() -> bool:
        # The send happens before its row is marked sent, so the status lags by a moment.
        return await harness.channels_of("amy") == {"telegram": "sent", "inapp": "sent"}

    await eventually(both_recorded)
    assert await harness.channels_of("bob") == {}
    assert harness.mails == []


async def test_a_duplicate_event_is_delivered_once_per_channel(harness: Harness) -> None:
    """The same event (one envelope id) arriving three times makes one delivery per channel."""
    for _ in range(3):
        await harness.event(dinner(), "ev-dup")
    await harness.telegram.wait_sent(lambda m: m["chat_id"] == 1001)
    await asyncio.sleep(0.3)
    assert harness.telegram.sent_to(1001) == [harness.telegram.sent[0]["text"]]
    page = await harness.ask(ListNotifications(user_id="amy"))
    assert len(page.items) == 1


async def test_preferences_switch_a_channel_off_but_not_security_messages(
    harness: Harness,
) -> None:
    """With Telegram off for splits and account, an expense skips Telegram, yet a password
    change (a security message) still goes there."""
    await harness.ask(
        SetPreferences(
            user_id="amy", changes={"splits": {"telegram": False}, "account": {"telegram": False}}
        )
    )
    await harness.event(dinner(), "ev-pref")

    async def stored() -> bool:
        return (await harness.channels_of("amy")).get("inapp") == "sent"

    await eventually(stored)
    assert "telegram" not in await harness.channels_of("amy")
    await harness.event(
        PasswordChanged(user_id="amy", email="amy@example.com", telegram_chat_id=1001), "ev-pw"
    )
    sent = await harness.telegram.wait_sent(lambda m: m["chat_id"] == 1001)
    assert "Password changed" in sent["text"]

    async def mailed() -> bool:
        # the mail is tried beside the Telegram message: wait for its outcome too
        return (await harness.channels_of("amy")).get("email") == "sent"

    await eventually(mailed)
    assert [mail.to for mail in harness.mails] == ["amy@example.com"]


async def test_a_failing_telegram_is_retried_then_failed_without_holding_up_in_app(
    harness: Harness,
) -> None:
    """Bot API 500s on every try: Telegram is retried up to the limit and marked failed,
    while the in-app notification was delivered at once."""
    for token in TOKENS:
        harness.telegram.fail_next(token, 500, times=10)
    await harness.event(dinner(), "ev-500")

    async def settled() -> bool:
        return await harness.channels_of("amy") == {"telegram": "failed", "inapp": "sent"}

    await eventually(settled)
    [telegram] = await store.list_deliveries(harness.pool, user_id="amy", status="failed")
    assert telegram.attempts == 3
    assert len(await store.attempts(harness.pool, telegram.id)) == 3


async def test_a_429_waits_the_retry_after_it_names(harness: Harness) -> None:
    """A 429 with retry_after=1 makes the next try wait about a second (not the 50 ms
    backoff), and then it is delivered."""
    for token in TOKENS:
        harness.telegram.fail_next(token, 429, retry_after=1)
    started = asyncio.get_running_loop().time()
    await harness.event(dinner(), "ev-429")
    await harness.telegram.wait_sent(lambda m: m["chat_id"] == 1001, timeout=5)
    assert asyncio.get_running_loop().time() - started >= 0.9

    async def recorded() -> bool:
        return (await harness.channels_of("amy")).get("telegram") == "sent"

    await eventually(recorded)


async def test_money_and_sms_follow_the_preferences(harness: Harness) -> None:
    """A top-up is told in-app but not mailed by default; switched on, email and SMS (to
    the verified phone) carry the next one."""
    await harness.event(
        TopUpSucceeded(top_up_id="t1", user_id="amy", amount=2000, currency="EUR"), "ev-t1"
    )

    async def told() -> bool:
        return (await harness.channels_of("amy")).get("inapp") == "sent"

    await eventually(told)
    assert harness.mails == []
    assert harness.sms.sent == []
    await harness.ask(
        SetPreferences(user_id="amy", changes={"money": {"email": True, "sms": True}})
    )
    await harness.event(
        TopUpSucceeded(top_up_id="t2", user_id="amy", amount=500, currency="EUR"), "ev-t2"
    )

    async def mailed_and_texted() -> bool:
        return len(harness.mails) == 1 and len(harness.sms.sent) == 1

    await eventually(mailed_and_texted)
    assert harness.mails[0].to == "amy@example.com"
    assert "5.00 EUR" in harness.mails[0].text
    assert harness.sms.sent[0][0] == "+491701234567"
    assert "5.00 EUR" in harness.sms.sent[0][1]


async def test_the_feed_lists_marks_read_and_counts_unread(harness: Harness) -> None:
    """The in-app feed shows newest first, `unread_only` filters, and read marks stick."""
    await harness.event(dinner("e1"), "ev-f1")
    await harness.event(dinner("e2"), "ev-f2")

    async def two() -> bool:
        return len((await harness.ask(ListNotifications(user_id="amy"))).items) == 2

    await eventually(two)
    page = await harness.ask(ListNotifications(user_id="amy"))
    assert page.unread == 2
    assert [item.data["expense_id"] for item in page.items] == ["e2", "e1"]
    await harness.ask(MarkRead(user_id="amy", notification_id=page.items[0].id))
    unread = await harness.ask(ListNotifications(user_id="amy", unread_only=True))
    assert [item.data["expense_id"] for item in unread.items] == ["e1"]
    await harness.ask(MarkAllRead(user_id="amy"))
    assert (await harness.ask(ListNotifications(user_id="amy"))).unread == 0


async def test_bad_preferences_are_refused_and_change_nothing(harness: Harness) -> None:
    """An unknown category or channel is refused naming it; the switches stay as they were."""
    before = await harness.ask(GetPreferences(user_id="amy"))
    with pytest.raises(InvalidPreference) as unknown:
        await harness.ask(SetPreferences(user_id="amy", changes={"parties": {"email": True}}))
    assert unknown.value.details["field"] == "$.parties"
    with pytest.raises(InvalidPreference):
        await harness.ask(
            SetPreferences(user_id="amy", changes={"money": {"email": False, "pigeon": True}})
        )
    assert await harness.ask(GetPreferences(user_id="amy")) == before
