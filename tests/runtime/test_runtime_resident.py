"""Hot state in a running shard (Actor.resident): kept between messages, counted in the
node's budget, emptied when the shard restarts or stops."""

from __future__ import annotations

from typing import Any

import pytest

from actors.runtime import Actor, ActorSystem, Message, RestartPolicy, handles
from tests.runtime.conftest import Cluster, wait_until

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class Remember(Message, frozen=True):
    key: str
    value: str


class Recall(Message, frozen=True):
    key: str


class Recalled(Message, frozen=True):
    value: str | None


class Explode(Message, frozen=True):
    key: str


class Memo(Actor):
    """Keeps what it is told in its shard's hot state."""

    @handles(Remember)
    async def remember(self, message: Remember) -> None:
        self.resident("memo").put(message.key, message.value)

    @handles(Recall)
    async def recall(self, message: Recall) -> Recalled:
        return Recalled(value=self.resident("memo").get(message.key))

    @handles(Explode)
    async def explode(self, message: Explode) -> None:
        raise RuntimeError("boom")


async def test_state_is_kept_between_messages(system: ActorSystem) -> None:
    """What one message put, the next reads from memory, and the node's budget counts it."""
    system.codec.register(Recalled)
    ref = system.spawn(Memo, "memo")
    await ref.ask(Remember(key="a", value="alpha"))
    reply = await ref.ask(Recall(key="a"))
    assert reply == Recalled(value="alpha")
    assert system.state_budget.used > 0
    assert system.state_budget.entries() == 1


async def test_a_restart_empties_the_state(system: ActorSystem) -> None:
    """A crash replaces the instance: its hot state goes too (it may be half-changed)."""
    system.codec.register(Recalled)
    ref = system.spawn(Memo, "memo", policy=FAST, max_attempts=1)
    await ref.ask(Remember(key="a", value="alpha"))
    await ref.tell(Explode(key="a"))
    await wait_until(lambda: system.status()[0].restarts == 1)
    reply = await ref.ask(Recall(key="a"))
    assert reply == Recalled(value=None)
    assert system.state_budget.used == 0


async def test_stopping_frees_the_budget(system: ActorSystem) -> None:
    """When the shards stop on this node, every holder leaves the budget, empty."""
    ref = system.spawn(Memo, "memo", shards=2, key=lambda m: m.key)
    for key in ("a", "b", "c", "d"):
        await ref.ask(Remember(key=key, value=key))
    assert system.state_budget.entries() == 4
    await system.stop(timeout=1.0)
    assert system.state_budget.used == 0
    assert system.state_budget.holders == 0


async def test_shard_for_names_the_owner(system: ActorSystem) -> None:
    """The system says which shard a key routes to, as the refs route it."""
    system.spawn(Memo, "memo", shards=4, key=lambda m: m.key)
    route_shard = system.shard_for("memo", "some-key")
    assert 0 <= route_shard < 4
    assert system.shard_for("memo", "some-key") == route_shard


async def test_a_shard_acquired_again_forgets_what_it_held(
    cluster: Cluster, system: ActorSystem
) -> None:
    """On Redis a shard can move to another node and back under one instance: once this node
    acquired it again, what it held before is not answered (another node may have written)."""
    if not cluster.redis:
        pytest.skip("only the Redis transport leases shards")
    system.codec.register(Recalled)
    ref = system.spawn(Memo, "memo")
    await ref.ask(Remember(key="a", value="alpha"))
    [worker] = system._groups["memo"].workers
    mailbox: Any = worker.mailbox
    # as when the lease came back after another node held it (ShardHost._take_over): a new
    # tenure, whose reads start with this consumer's own backlog
    mailbox.tenure += 1
    mailbox.read_from = "0"
    reply = await ref.ask(Recall(key="a"))
    assert reply == Recalled(value=None)
