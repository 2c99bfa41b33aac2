"""Failures in handlers: typed refusals reach the asker; crashes retry, then dead-letter."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import asyncpg
import msgspec
import pytest

from actors.runtime import (
    Actor,
    ActorRef,
    ActorSystem,
    DomainError,
    HandlerFailed,
    InvalidInput,
    MemoryDeadLetterStore,
    Message,
    RestartPolicy,
    UnhandledMessage,
    handles,
)
from actors.runtime.context import current_trace_id, trace_id_var
from actors.runtime.dead_letters import (
    DeadLetterAlreadyReplayed,
    DeadLetterNotFound,
    DeadLetterNotReplayable,
)
from tests.runtime.conftest import Cluster, wait_until
from transport import Codec, MailboxClosed

FAST = RestartPolicy(backoff_initial=0.001, backoff_max=0.01)


class OutOfStock(DomainError):
    code = "unit_out_of_stock"
    category = "conflict"


class OverBudget(DomainError):
    """A refusal built from its own arguments rather than a message."""

    code = "unit_over_budget"
    category = "forbidden"

    def __init__(self, amount: int, budget: int) -> None:
        super().__init__(
            f"{amount} is over the budget of {budget}",
            details={"amount": amount, "budget": budget},
        )
        self.amount = amount


class Buy(Message, frozen=True):
    item: str
    amount: int = 1


class Bought(Message, frozen=True):
    item: str


class Poison(Message, frozen=True):
    n: int


class Fine(Message, frozen=True):
    n: int


class Orphan(Message, frozen=True):
    """Registered with the codec, but the actor has no handler for it."""

    n: int


class Shop(Actor):
    raised: list[DomainError]

    @handles(Buy)
    async def buy(self, message: Buy) -> Bought:
        if message.item == "\x00":
            # what asyncpg raises when PostgreSQL refuses a value (a NUL in text)
            raise asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence")
        if message.item == "gone":
            error: DomainError = OutOfStock(f"{message.item} is sold out", details={"n": 0})
        elif message.amount > 100:
            error = OverBudget(message.amount, 100)
        else:
            return Bought(item=message.item)
        self.raised.append(error)
        raise error


class Probe:
    """What the Fragile actor did, shared across its restarts."""

    def __init__(self) -> None:
        self.poison_calls = 0
        self.poison_traces: list[str] = []
        self.healed = False
        self.handled: list[tuple[str, int]] = []
        self.starts = 0


class Fragile(Actor):
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def on_start(self) -> None:
        self.probe.starts += 1

    @handles(Poison)
    async def poison(self, message: Poison) -> None:
        self.probe.poison_calls += 1
        self.probe.poison_traces.append(current_trace_id())
        if not self.probe.healed:
            raise RuntimeError(f"cannot digest {message.n}")
        self.probe.handled.append(("poison", message.n))

    @handles(Fine)
    async def fine(self, message: Fine) -> None:
        self.probe.handled.append(("fine", message.n))


def spawn_shop(system: ActorSystem, codec: Codec) -> tuple[list[DomainError], ActorRef]:
    codec.register(Bought)
    raised: list[DomainError] = []

    def factory() -> Shop:
        shop = Shop()
        shop.raised = raised
        return shop

    return raised, system.spawn(Shop, "shop", factory=factory, policy=FAST)


async def test_domain_error_is_reraised_at_the_asker(system: ActorSystem, codec: Codec) -> None:
    """A DomainError raised in a handler comes back to the asker as the same class, code,
    message and details, rebuilt from the codec's bytes (not the same object)."""
    raised, ref = spawn_shop(system, codec)
    with pytest.raises(OutOfStock) as caught:
        await ref.ask(Buy(item="gone"))
    error = caught.value
    assert type(error) is OutOfStock
    assert error is not raised[0]  # it crossed the codec
    assert error.code == "unit_out_of_stock"
    assert error.category == "conflict"
    assert error.message == "gone is sold out"
    assert error.details == {"n": 0}


async def test_domain_error_with_custom_init_is_reraised(system: ActorSystem, codec: Codec) -> None:
    """A DomainError subclass with its own __init__ arguments is re-raised as that class with
    the same code and message."""
    raised, ref = spawn_shop(system, codec)
    with pytest.raises(OverBudget) as caught:
        await ref.ask(Buy(item="car", amount=500))
    assert type(caught.value) is OverBudget
    assert caught.value is not raised[0]
    assert caught.value.code == "unit_over_budget"
    assert caught.value.message == "500 is over the budget of 100"
    assert str(caught.value) == "500 is over the budget of 100"
    assert caught.value.details == {"amount": 500, "budget": 100}


async def test_a_value_the_database_refuses_is_bad_input_not_a_crash(
    system: ActorSystem, codec: Codec
) -> None:
    """A database DataError (bad input such as a NUL) reaches the asker as InvalidInput;
    the actor is neither restarted nor is the message dead-lettered."""
    _raised, ref = spawn_shop(system, codec)
    with pytest.raises(InvalidInput) as caught:
        await ref.ask(Buy(item="\x00"))
    assert caught.value.code == "invalid_input"
    assert "invalid byte sequence" in caught.value.message
    assert await ref.ask(Buy(item="tea")) == Bought(item="tea")
    status = system.status()[0]
    assert (status.rejected, status.restarts, status.failed, status.dead_lettered) == (1, 0, 0, 0)


async def test_domain_error_is_a_refusal_not_a_crash(system: ActorSystem, codec: Codec) -> None:
    """A refusal neither restarts the actor nor dead-letters the message; the next ask works."""
    raised, ref = spawn_shop(system, codec)
    with pytest.raises(OutOfStock):
        await ref.ask(Buy(item="gone"))
    await ref.tell(Buy(item="gone"))
    assert await ref.ask(Buy(item="tea")) == Bought(item="tea")
    status = system.status()[0]
    assert (status.rejected, status.restarts, status.failed, status.dead_lettered) == (2, 0, 0, 0)
    assert len(raised) == 2
    assert (await system.dead_letters.list())[0] == []


async def test_poison_message_is_retried_then_dead_lettered_and_replayed(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore
) -> None:
    """A message whose handler always crashes is tried max_attempts times, dead-lettered with
    its error, attempts and trace id, answered with HandlerFailed; later messages still run;
    a replay delivers it once, and a second replay is refused."""
    probe = Probe()
    ref = system.spawn(
        Fragile, "fragile", factory=lambda: Fragile(probe), policy=FAST, max_attempts=3
    )
    token = trace_id_var.set("trace-of-the-poison")
    try:
        with pytest.raises(HandlerFailed, match="RuntimeError: cannot digest 7"):
            await ref.ask(Poison(n=7))
    finally:
        trace_id_var.reset(token)
    assert probe.poison_calls == 3
    assert probe.poison_traces == ["trace-of-the-poison"] * 3

    letters, cursor = await dead_letters.list()
    assert cursor is None
    assert len(letters) == 1
    letter = letters[0]
    assert letter.actor == "fragile"
    assert letter.message_type == "Poison"
    assert letter.attempts == 3
    assert letter.error == "RuntimeError: cannot digest 7"
    assert letter.trace_id == "trace-of-the-poison"
    assert letter.envelope is not None
    assert letter.replayed_at is None
    assert msgspec.json.decode(letter.body) == {"msg_type": "Poison", "n": 7}

    # the actor restarted after each crash and still handles what comes next
    await ref.tell(Fine(n=1))
    await wait_until(lambda: ("fine", 1) in probe.handled)
    status = system.status()[0]
    assert status.dead_lettered == 1
    assert status.failed == 3
    assert status.restarts == 3
    assert status.state == "running"
    assert status.last_error == "RuntimeError: cannot digest 7"

    probe.healed = True
    replayed = await system.replay(letter.id)
    assert replayed.id == letter.id
    await wait_until(lambda: ("poison", 7) in probe.handled)
    assert probe.poison_calls == 4
    assert probe.poison_traces[-1] == "trace-of-the-poison"  # the trace continues
    stored = await dead_letters.get(letter.id)
    assert stored is not None
    assert stored.replayed_at is not None

    with pytest.raises(DeadLetterAlreadyReplayed):
        await system.replay(letter.id)
    await asyncio.sleep(0.01)
    assert probe.handled.count(("poison", 7)) == 1


async def test_crash_on_a_tell_is_retried_then_dead_lettered(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore
) -> None:
    """A told poison message is retried max_attempts times before it is dead-lettered, and
    the messages behind it are handled afterwards, in order."""
    probe = Probe()
    ref = system.spawn(
        Fragile, "fragile", factory=lambda: Fragile(probe), policy=FAST, max_attempts=2
    )
    await ref.tell(Fine(n=1))
    await ref.tell(Poison(n=2))
    await ref.tell(Fine(n=3))
    await wait_until(lambda: ("fine", 3) in probe.handled)
    assert probe.handled == [("fine", 1), ("fine", 3)]
    assert probe.poison_calls == 2
    letters, _ = await dead_letters.list(actor="fragile")
    assert [(x.message_type, x.attempts) for x in letters] == [("Poison", 2)]


async def test_message_without_handler_is_dead_lettered(
    system: ActorSystem, codec: Codec, dead_letters: MemoryDeadLetterStore
) -> None:
    """A message the actor has no handler for goes to the dead letters, and its asker gets
    UnhandledMessage; the actor is not restarted."""
    codec.register(Orphan)
    probe = Probe()
    ref = system.spawn(Fragile, "fragile", factory=lambda: Fragile(probe), policy=FAST)
    with pytest.raises(UnhandledMessage, match="no handler for Orphan"):
        await ref.ask(Orphan(n=1))
    await ref.tell(Orphan(n=2))
    await ref.tell(Fine(n=3))
    await wait_until(lambda: ("fine", 3) in probe.handled)
    letters, _ = await dead_letters.list()
    assert sorted(msgspec.json.decode(x.body)["n"] for x in letters) == [1, 2]
    assert system.status()[0].restarts == 0
    assert probe.starts == 1


async def test_replay_of_unknown_or_unencodable_letter_is_refused(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore
) -> None:
    """Replaying an id that does not exist, or a letter without encodable bytes, is refused
    and leaves the letter unmarked."""
    with pytest.raises(DeadLetterNotFound):
        await system.replay("no-such-letter")
    probe = Probe()
    ref = system.spawn(Fragile, "fragile", factory=lambda: Fragile(probe), policy=FAST)
    await ref.tell(Poison(n=1))
    await wait_until(lambda: system.status()[0].dead_lettered == 1)
    letter = (await dead_letters.list())[0][0]
    letter.envelope = None
    with pytest.raises(DeadLetterNotReplayable):
        await system.replay(letter.id)
    assert letter.replayed_at is None


async def test_failed_replay_send_unmarks_the_letter(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore, cluster: Cluster
) -> None:
    """A replay that cannot be sent (the node is closing) can be tried again later."""
    probe = Probe()
    ref = system.spawn(Fragile, "fragile", factory=lambda: Fragile(probe), policy=FAST)
    await ref.tell(Poison(n=1))
    await wait_until(lambda: system.status()[0].dead_lettered == 1)
    letter = (await dead_letters.list())[0][0]
    await system.stop(timeout=0.2)
    if cluster.redis:
        # a stopped node still reaches the shared streams, which other nodes serve: only a
        # closed transport refuses the send
        await cluster.close_transport(system.transport)
    with pytest.raises(MailboxClosed):
        await system.replay(letter.id)
    stored = await dead_letters.get(letter.id)
    assert stored is not None
    assert stored.replayed_at is None


class SignIn(Message, frozen=True):
    """A message with a secret: its password must never rest in the dead letters."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    email: str
    password: str


class Gatekeeper(Actor):
    @handles(SignIn)
    async def sign_in(self, message: SignIn) -> None:
        raise RuntimeError("the door is stuck")


async def test_dead_letters_keep_no_secrets(
    system: ActorSystem, dead_letters: MemoryDeadLetterStore
) -> None:
    """A dead-lettered message's secret fields are redacted, and it cannot be replayed."""
    ref = system.spawn(Gatekeeper, "gatekeeper", policy=FAST)
    await ref.tell(SignIn(email="a@example.com", password="hunter2-but-longer"))
    await wait_until(lambda: dead_letters._letters)
    [letter] = list(dead_letters._letters.values())
    assert "hunter2" not in bytes(letter.body).decode()
    assert msgspec.json.decode(letter.body)["email"] == "a@example.com"
    assert letter.envelope is None
    with pytest.raises(DeadLetterNotReplayable):
        await system.replay(letter.id)
