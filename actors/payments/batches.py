"""The one shape of the payments actor's batches: a run of messages of one kind (transfers,
holds placed, holds captured) that waited together in a shard's mailbox commits in ONE
transaction, each message with its own answer (its view, or the DomainError a lone message
would get), in mailbox order.

`Batched.apply` checks each message alone (a malformed one is refused before any IO),
creates the accounts the run needs in autocommit statements, then in one transaction
(retried on a deadlock or serialization failure) locks the accounts (id order, the one
lock order of every ledger step), recalls the run's idempotency keys and decides each
message in mailbox order against that locked state kept in memory (`store.Booking`): a key
seen before replays its first answer, so a retry never acts twice, in this run or a later
one; a refusal changes nothing and the rest go on. The transfers, entries, balances, keys
and events are written once, at the end. A lone message is a run of one.

What differs between the kinds is theirs (the subclasses): the checks, the accounts to
create, what is read or written besides the booking, and the posting of one message.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeAlias, TypeVar

import msgspec

from actors.payments import store
from actors.payments.ledger import AccountKey
from actors.payments.shared import fingerprint, no_fault, retrying
from actors.runtime import Context, DomainError, Message, Transaction, at
from actors.runtime.idempotency import Remembered, Row, replay

M = TypeVar("M", bound=Message)
V = TypeVar("V", bound=Message)
S = TypeVar("S")

# one message checked alone: why it is refused, or the accounts it would touch
Checked = DomainError | list[AccountKey]
# an event to publish if the batch commits, and the actor also told of it (or None)
Event = tuple[Message, str | None]
# a run's answers, in order: a view or a refusal each
Answers: TypeAlias = list[V | DomainError]
# the messages of a run posted now (not replayed), each with its view
Posted: TypeAlias = list[tuple[M, V]]


@dataclass(slots=True)
class Batch(Generic[S]):
    """What one batch's transaction has decided so far, in memory."""

    tx: Transaction
    booking: store.Booking
    now_s: float
    now: datetime
    # the kind's own state (the holds this batch reads or makes)
    state: S
    events: list[Event] = field(default_factory=list)


def check_each(messages: Sequence[M], check: Callable[[M], list[AccountKey]]) -> list[Checked]:
    """Each message checked as a lone one would be: its refusal, or its accounts."""
    checked: list[Checked] = []
    for message in messages:
        try:
            checked.append(check(message))
        except DomainError as error:
            checked.append(error)
    return checked


class Batched(abc.ABC, Generic[M, V, S]):
    """A part applying runs of messages of one kind (M) in one transaction each, answering
    each with a view (V) or a refusal; S is what a batch keeps besides its booking."""

    # names the transaction in the retry log
    what: str
    view: type[V]

    def __init__(self, context: Context) -> None:
        self._context = context
        self._pool = context.pool
        # awaited inside a batch's transaction after its writes, before its commit: a seam
        # for tests that inject a fault there
        self.before_commit: Callable[[Sequence[M]], Awaitable[None]] = no_fault

    async def one(self, message: M) -> V:
        """A lone message: a batch of one; a refusal is raised."""
        result = (await self.apply([message]))[0]
        if isinstance(result, DomainError):
            raise result
        return result

    async def apply(self, messages: Sequence[M]) -> Answers[V]:
        """Apply a run in ONE transaction: a view or a refusal for each, in order."""
        checked = await self._check(messages)
        fine = _fine(messages, checked)
        refused = [c for c in checked if isinstance(c, DomainError)]
        if len(refused) == len(messages) and not any(
            self._refused(m, c) for m, c in zip(messages, refused, strict=True)
        ):
            # every one refused by its checks, and none to tell: nothing to commit
            return list(refused)
        await self._prepare(fine, _accounts(checked))
        results, posted = await retrying(lambda: self._commit(messages, checked), self.what)
        self._done(results, posted)
        return results

    async def _commit(
        self, messages: Sequence[M], checked: Sequence[Checked]
    ) -> tuple[Answers[V], Posted[M, V]]:
        now_s = self._context.clock()
        fine = _fine(messages, checked)
        results: Answers[V] = []
        posted: Posted[M, V] = []
        keys: list[Row] = []
        async with self._context.transaction(dedupe=False) as tx:
            booking = store.Booking(await store.lock_accounts(tx, _accounts(checked)))
            batch = Batch(tx, booking, now_s, at(now_s), await self._open(tx, fine))
            memory = await store.KEYS.recall_many(tx, [self._scope_key(m) for m in fine])
            for message, check in zip(messages, checked, strict=True):
                try:
                    if isinstance(check, DomainError):
                        raise check
                    view, new = await self._answer(batch, memory, keys, message)
                except DomainError as refusal:
                    results.append(refusal)
                    event = self._refused(message, refusal)
                    if event is not None:
                        batch.events.append(event)
                    continue
                results.append(view)
                if new:
                    posted.append((message, view))
            await self._write(batch)
            await booking.flush(tx)
            await store.KEYS.remember_many(tx, keys, batch.now)
            for told, also in batch.events:
                await tx.publish(told, also=also)
            await self.before_commit(messages)
        return results, posted

    async def _answer(
        self,
        batch: Batch[S],
        memory: dict[tuple[str, str], Remembered],
        keys: list[Row],
        message: M,
    ) -> tuple[V, bool]:
        """One message's answer, and whether it was posted now: the first answer its key
        gave (a retry), or its own."""
        scope_key = self._scope_key(message)
        print_ = self._fingerprint(message)
        known = memory.get(scope_key)
        if known is not None:
            return replay(known, print_, self.view), False
        view = await self._post(batch, message)
        reply = msgspec.msgpack.encode(view)
        # the same key later in the batch replays this answer
        memory[scope_key] = Remembered(print_, reply)
        keys.append((scope_key[0], scope_key[1], print_, reply, None))
        return view, True

    # ── the kind's own parts ───────────────────────────────────────────────────────────

    @abc.abstractmethod
    async def _check(self, messages: Sequence[M]) -> list[Checked]:
        """Each message checked alone, before the transaction (see `check_each`)."""

    @abc.abstractmethod
    async def _prepare(self, fine: Sequence[M], accounts: Sequence[AccountKey]) -> None:
        """Create the accounts the run needs (autocommit, before the transaction)."""

    @abc.abstractmethod
    async def _open(self, tx: Transaction, fine: Sequence[M]) -> S:
        """The batch's own state, read after the accounts are locked."""

    @abc.abstractmethod
    def _scope_key(self, message: M) -> tuple[str, str]:
        """The (scope, key) its idempotency key is remembered under."""

    def _fingerprint(self, message: M) -> bytes:
        """What a retry with the same key must repeat to be answered the same."""
        return fingerprint(message)

    @abc.abstractmethod
    async def _post(self, batch: Batch[S], message: M) -> V:
        """Decide one message (not seen before) against the batch's locked state: post it
        in memory and answer it, or raise its refusal having changed nothing."""

    async def _write(self, batch: Batch[S]) -> None:
        """Write what the batch decided besides its booking (before the booking's flush)."""

    def _refused(self, message: M, refusal: DomainError) -> Event | None:
        """The event a refusal publishes, if any."""
        return None

    def _done(self, results: Answers[V], posted: Posted[M, V]) -> None:
        """After the commit, what the kind does with the run's answers (timers, logs)."""


def _fine(messages: Sequence[M], checked: Sequence[Checked]) -> list[M]:
    return [m for m, c in zip(messages, checked, strict=True) if not isinstance(c, DomainError)]


def _accounts(checked: Sequence[Checked]) -> list[AccountKey]:
    return sorted({a for c in checked if not isinstance(c, DomainError) for a in c})
