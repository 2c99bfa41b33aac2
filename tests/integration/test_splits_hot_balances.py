"""Hot balances (issue 20): a Splits shard answers GetBalances from its memory once loaded,
and every change to the group (expense, settlement, member) is seen at the next read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from actors.splits.hot import IDLE_SECONDS
from actors.splits.messages import (
    AddMember,
    DeleteExpense,
    GetBalances,
    GroupNotFound,
    RecordSettlement,
    RemoveMember,
)
from tests.integration.test_splits_actor import Harness, running

pytestmark = pytest.mark.integration


@pytest.fixture
async def harness(database_url: str) -> AsyncIterator[Harness]:
    async with running(database_url) as started:
        yield started


def kept(harness: Harness) -> int:
    """How many balance views the shards hold in memory."""
    return sum(len(instance.hot) for instance in harness.instances)


async def test_balances_after_an_expense_and_a_settlement_are_the_new_ones(
    harness: Harness,
) -> None:
    """A read keeps the view; an expense, a cash settlement and a deleted expense each
    show at the next read (the copy is dropped and loaded again)."""
    group_id = await harness.group("amy", "bob")
    assert await harness.nets(group_id, "amy") == {}
    assert kept(harness) == 1
    dinner = await harness.expense(group_id, "amy", 5000)
    assert await harness.nets(group_id, "bob") == {"amy": 2500, "bob": -2500}
    await harness.ask(
        RecordSettlement(
            group_id=group_id,
            user_id="bob",
            settlement_id=str(uuid.uuid4()),
            to_user_id="amy",
            amount=1000,
            currency="EUR",
            method="cash",
        )
    )
    assert await harness.nets(group_id, "amy") == {"amy": 1500, "bob": -1500}
    await harness.ask(DeleteExpense(group_id=group_id, user_id="amy", expense_id=dinner.id))
    assert await harness.nets(group_id, "amy") == {"amy": -1000, "bob": 1000}


async def test_members_coming_and_going_show_and_outsiders_are_refused(harness: Harness) -> None:
    """A member added after the copy was kept is in the next read; a removed one is refused
    from memory as an outsider always was."""
    group_id = await harness.group("amy", "bob")
    view = await harness.ask(GetBalances(group_id=group_id, user_id="amy"))
    assert [line.user_id for line in view.balances] == ["amy", "bob"]
    await harness.ask(AddMember(group_id=group_id, user_id="amy", member_user_id="cy"))
    view = await harness.ask(GetBalances(group_id=group_id, user_id="cy"))
    assert [line.user_id for line in view.balances] == ["amy", "bob", "cy"]
    await harness.ask(RemoveMember(group_id=group_id, user_id="amy", member_user_id="cy"))
    with pytest.raises(GroupNotFound):
        await harness.ask(GetBalances(group_id=group_id, user_id="cy"))
    with pytest.raises(GroupNotFound):
        await harness.ask(GetBalances(group_id=group_id, user_id="mallory"))


async def test_a_read_is_served_from_memory_until_passivated_then_loaded_again(
    harness: Harness,
) -> None:
    """Rows changed behind the actor's back (never done in earnest) do not show while the
    copy is kept, which shows reads come from memory; once the copy has been idle for the
    idle time it is dropped and the next read loads the tables again."""
    group_id = await harness.group("amy", "bob")
    await harness.expense(group_id, "amy", 2000)
    assert await harness.nets(group_id, "amy") == {"amy": 1000, "bob": -1000}
    await harness.pool.execute(
        "UPDATE splits_balances SET net = net * 2 WHERE group_id = $1", group_id
    )
    assert await harness.nets(group_id, "amy") == {"amy": 1000, "bob": -1000}
    harness.clock.now += IDLE_SECONDS + 1
    assert await harness.nets(group_id, "amy") == {"amy": 2000, "bob": -2000}
    assert kept(harness) == 1
