"""In-app notices stored with their event (issue 20): each event's in-app deliveries, feed
items and tries commit in the one transaction that records the event, once per event,
and a crash before that commit leaves nothing behind and the redelivery stores them once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from actors.notifications import store
from actors.notifications.messages import ListNotifications
from actors.payments.messages import TransferCompleted
from tests.integration.test_notifications_channels_actor import Harness, eventually, harness

pytestmark = pytest.mark.integration
__all__ = ["harness"]  # the fixture, shared with the channels' tests

EVENTS = 12


def paid(n: int) -> TransferCompleted:
    return TransferCompleted(
        transfer_id=f"t-{n}",
        from_user_id="amy",
        to_user_id="bob",
        amount=100 + n,
        currency="EUR",
        kind="p2p",
    )


async def in_app(harness: Harness, user_id: str) -> list[store.Delivery]:
    deliveries = await store.list_deliveries(harness.pool, user_id=user_id, limit=200)
    return [d for d in deliveries if d.channel == "inapp"]


async def test_many_events_make_one_notice_each_exactly_once(harness: Harness) -> None:
    """Twelve transfers, each event arriving twice, give each side twelve feed items and
    twelve in-app deliveries, sent with one try each, pushed live once each."""
    for n in range(EVENTS):
        await harness.event(paid(n), f"ev-{n}")
    for n in range(EVENTS):
        await harness.event(paid(n), f"ev-{n}")

    async def all_there() -> bool:
        return len(await in_app(harness, "bob")) == EVENTS

    await eventually(all_there)
    for user_id in ("amy", "bob"):
        page = await harness.ask(ListNotifications(user_id=user_id, limit=50))
        assert len(page.items) == EVENTS
        assert page.unread == EVENTS
        deliveries = await in_app(harness, user_id)
        assert {d.status for d in deliveries} == {"sent"}
        assert {d.attempts for d in deliveries} == {1}
        assert {d.id for d in deliveries} == {item.id for item in page.items}
        for delivery in deliveries:
            tries = await store.attempts(harness.pool, delivery.id)
            assert [(t.attempt, t.status) for t in tries] == [(1, "sent")]
    assert sorted(user for user, _ in harness.pushed) == ["amy"] * EVENTS + ["bob"] * EVENTS


async def test_a_crash_before_the_commit_is_redelivered_without_doubling(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first recording of an event writes its notices then fails before the commit:
    nothing stays; the runtime hands the same event again and each side gets one notice."""
    real = store.add_sent_items
    crashes: list[int] = []

    async def crashing(db: Any, **fields: Any) -> Sequence[Any]:
        rows = await real(db, **fields)
        if not crashes:
            crashes.append(len(rows))
            raise RuntimeError("the node fails before the commit")
        return rows

    monkeypatch.setattr(store, "add_sent_items", crashing)
    await harness.event(paid(1), "ev-crash")

    async def stored() -> bool:
        return len(await in_app(harness, "amy")) == 1 and len(await in_app(harness, "bob")) == 1

    await eventually(stored)
    assert crashes == [2]
    for user_id in ("amy", "bob"):
        page = await harness.ask(ListNotifications(user_id=user_id))
        assert [item.kind for item in page.items] == [
            "TransferSent" if user_id == "amy" else "TransferReceived"
        ]
