"""Reliable hand-off: a state change and the messages it causes commit in one transaction.

A handler opens `self.transaction()`. In that one PostgreSQL transaction it changes its own
tables, the id of the message in hand goes into `runtime_inbox` (a batch marks all of its
messages' ids with `tx.mark_handled`), and `tx.tell` writes encoded envelopes into
`runtime_outbox`. Either all of it commits or none of it does.

The relay (one task per node, started by the ActorSystem) delivers committed outbox rows
through the transport and marks them sent. It is nudged right after each commit, and it
also sweeps every `interval` seconds for rows a crash left unsent — on any node, so a dead
node's rows are delivered by a live one. A row's envelope id is fixed when it is written,
so a redelivery carries the same id and the receiver's inbox turns it into a no-op:
delivery is at-least-once, effects are exactly-once.

Guarantees and their limits:

- Rows to one actor shard are delivered in the order they were written (`seq`), so what one
  sender shard tells one target shard arrives in order (transactions of different senders
  that commit out of `seq` order keep no order between them). A row that cannot be sent
  holds back the later rows of its target shard (exponential backoff, logged) and no
  others; it is never dropped.
- One relay delivers at a time, across all nodes (a transaction-scoped advisory lock), so
  two nodes never send the same row at once and per-shard order holds across nodes.
- A row is marked sent only after the transport took it (and, for a transport that buffers,
  after `flush_now()` returned), in the transaction of the pass that holds the relay lock.
  A crash or a cancellation in between leaves it unsent: it is sent again, and deduplicated.
- Sent rows are pruned after `sent_retention` (24 h); inbox rows after `inbox_retention`
  (7 days). A message redelivered more than `inbox_retention` after it was first handled
  is not recognised as a duplicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg
import structlog

from actors.runtime.backoff import Backoff
from actors.runtime.context import current_trace_id
from transport import Envelope, Message

if TYPE_CHECKING:
    from actors.runtime.actor import Actor
    from actors.runtime.system import ActorSystem

log = structlog.get_logger("actors.runtime.outbox")

# Any fixed number (the schema lock is 7_350_001): the relay pass holding it is the only one
# sending, on every node sharing the database.
_RELAY_LOCK = 7_350_002
# Prune in chunks so one DELETE never holds many locks or runs for long.
_PRUNE_CHUNK = 5_000


# before the next try of a row the transport did not take
RELAY_BACKOFF = Backoff(0.5, 60.0)


class OutboxUnavailable(RuntimeError):
    """`transaction()` was used on a system built without an Outbox (no database)."""

    code = "outbox_unavailable"


class TransactionMisuse(RuntimeError):
    """`transaction()` was used in a way that would break exactly-once effects."""

    code = "transaction_misuse"


class Transaction:
    """One database transaction of a handler: its writes, the inbox mark and the messages.

    Use it through `Actor.transaction()`. On entry the id of the message being handled is
    recorded in the inbox; if it was there already, `duplicate` is True and the transaction
    is rolled back on exit whatever the handler did in it, so a redelivered message can
    never apply its effect twice. Check `duplicate` anyway and return at once: it also saves
    the work, and effects outside the database (attributes, calls) are not rolled back.
    """

    __slots__ = (
        "_actor",
        "_connection",
        "_dedupe",
        "_done",
        "_envelope",
        "_outbox",
        "_rows",
        "_transaction",
        "duplicate",
    )

    def __init__(self, actor: Actor, *, dedupe: bool = True) -> None:
        self._actor = actor
        self._dedupe = dedupe
        self._outbox: Outbox | None = None
        self._connection: Any = None
        self._transaction: Any = None
        self._envelope: Envelope | None = None
        # rows for runtime_outbox, written in one statement just before the commit
        self._rows: list[tuple[str, str, int, str, str, bytes]] = []
        self._done = False
        self.duplicate = False

    async def __aenter__(self) -> Transaction:
        actor = self._actor
        outbox = actor.system.outbox
        if outbox is None:
            raise OutboxUnavailable(
                f"{actor.name}: this ActorSystem has no Outbox (it was built without a database)"
            )
        if self._dedupe:
            self._envelope = self._message_in_hand()
        self._outbox = outbox
        self._connection = connection = await outbox.pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
            self._transaction = transaction
            if self._envelope is not None:
                first = await connection.fetchval(
                    "INSERT INTO runtime_inbox (actor, message_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    actor.name,
                    self._envelope.id,
                )
                self.duplicate = first is None
                if self.duplicate:
                    log.info(
                        "duplicate_message_skipped",
                        actor=actor.name,
                        shard=actor.shard,
                        message_id=self._envelope.id,
                        message_type=type(self._envelope.body).__name__,
                    )
        except BaseException:
            await self._release(commit=False, failing=True)
            raise
        return self

    def _message_in_hand(self) -> Envelope:
        actor = self._actor
        envelope = actor.envelope
        if envelope is None and type(actor).batch_size > 1:
            # several messages in hand: no single message id names the transaction (a
            # message run alone, or by `handle_single`, has its envelope in hand)
            raise TransactionMisuse(
                f"{actor.name} handles batches: use transaction(dedupe=False) and make the "
                "batch idempotent by its own keys, or mark its ids with tx.mark_handled"
            )
        if envelope is None:
            raise TransactionMisuse(
                f"{actor.name}: no message in hand to deduplicate (outside a handler?); "
                "use transaction(dedupe=False)"
            )
        if actor._inbox_envelope is envelope:
            # a second deduplicated transaction would find the first one's inbox row and
            # quietly roll itself back as a "duplicate"
            raise TransactionMisuse(
                f"{actor.name}: this message already committed its deduplicated transaction; "
                "do the whole change in one, or use transaction(dedupe=False) for the rest"
            )
        return envelope

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        commit = exc_type is None and not self.duplicate
        if commit and self._rows:
            try:
                await self._write_rows()
            except BaseException:
                await self._release(commit=False, failing=True)
                raise
        committed = await self._release(commit=commit, failing=exc_type is not None)
        if committed:
            if self._envelope is not None:
                self._actor._inbox_envelope = self._envelope
            if self._rows and self._outbox is not None:
                # after the commit, never before: a rolled-back row must not be sent
                self._outbox.notify()

    async def _write_rows(self) -> None:
        # unnest keeps the rows in tell order, so their seq (the delivery order) follows it
        await self._connection.execute(
            """
            INSERT INTO runtime_outbox (id, actor, shard, message_type, trace_id, envelope)
            SELECT id, actor, shard, message_type, trace_id, envelope
            FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bytea[])
                WITH ORDINALITY AS r(id, actor, shard, message_type, trace_id, envelope, n)
            ORDER BY n
            """,
            *(list(column) for column in zip(*self._rows, strict=True)),
        )

    async def _release(self, *, commit: bool, failing: bool = False) -> bool:
        """End the transaction and give the connection back; True when it committed."""
        connection, transaction = self._connection, self._transaction
        self._connection = self._transaction = None
        self._done = True
        if connection is None or self._outbox is None:
            return False
        try:
            if transaction is not None:
                if commit:
                    await transaction.commit()
                    return True
                try:
                    await transaction.rollback()
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
                    if not failing:
                        raise
                    # the handler's own error matters more; the pool resets the connection
                    log.warning("transaction_rollback_failed", error=str(error))
            return False
        finally:
            await self._outbox.pool.release(connection)

    @property
    def connection(self) -> Any:
        """The asyncpg connection, inside the transaction (for anything the helpers lack)."""
        if self._connection is None:
            raise TransactionMisuse("the transaction is not open")
        return self._connection

    async def execute(self, query: str, *args: Any) -> str:
        status: str = await self.connection.execute(query, *args)
        return status

    async def executemany(self, query: str, args: Any) -> None:
        await self.connection.executemany(query, args)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self.connection.fetch(query, *args)
        return rows

    async def fetchrow(self, query: str, *args: Any) -> Any:
        return await self.connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.connection.fetchval(query, *args)

    async def mark_handled(self, message_ids: Sequence[str]) -> set[str]:
        """Record these messages as handled by this actor, in this transaction (the inbox a
        deduplicated transaction marks one id in); the ids that were not there before.

        For a batch (`Actor.handle_envelopes`): open the transaction with `dedupe=False`,
        mark the batch's envelope ids, and apply only the new ones; a redelivered message,
        in this batch or a later one, or run alone, finds its mark and has no second
        effect. The marks commit or roll back with the batch's writes.
        """
        if self._done or self._connection is None:
            raise TransactionMisuse("tx.mark_handled outside its transaction")
        if self._envelope is not None:
            raise TransactionMisuse(
                "this transaction marks the message in hand already: open it with "
                "dedupe=False to mark a batch's ids"
            )
        if not message_ids:
            return set()
        rows = await self._connection.fetch(
            "INSERT INTO runtime_inbox (actor, message_id)"
            " SELECT $1, id FROM unnest($2::text[]) AS m(id)"
            " ON CONFLICT DO NOTHING RETURNING message_id",
            self._actor.name,
            list(message_ids),
        )
        fresh = {row["message_id"] for row in rows}
        if len(fresh) < len(set(message_ids)):
            log.info(
                "duplicate_messages_skipped",
                actor=self._actor.name,
                shard=self._actor.shard,
                duplicates=len(set(message_ids)) - len(fresh),
            )
        return fresh

    async def tell(self, actor: str, message: Message, *, key: object = None) -> str:
        """Send `message` to `actor` if, and only if, this transaction commits.

        Routed like `Actor.tell` (same key, same shard). The envelope is encoded now, so a
        message that cannot cross a network fails here, inside the transaction. Returns the
        envelope id, which every redelivery of this message keeps.
        """
        if self._done or self._connection is None:
            raise TransactionMisuse("tx.tell outside its transaction")
        sender = self._actor
        system = sender.system
        ref = system.ref(actor)  # UnknownActor now rather than at delivery
        envelope_id = system.ids.next()
        envelope = Envelope(
            id=envelope_id,
            target=actor,
            # the route object is the ref's own; the shard is fixed now, as a tell's is
            shard=ref._route.shard_for(message, key),
            kind="tell",
            body=message,
            sender=sender.address,
            trace_id=current_trace_id() or envelope_id,
        )
        data = system.codec.encode(envelope)
        self._rows.append(
            (envelope_id, actor, envelope.shard, type(message).__name__, envelope.trace_id, data)
        )
        return envelope_id

    async def publish(self, event: Message, *, also: str | None = None) -> None:
        """Tell `event` to every actor type subscribed to its type if this transaction
        commits (who hears what is declared once, with `ActorSystem.subscribe`), and to
        `also` (say, the asker's own actor) when it is not a subscriber already."""
        targets = self._actor.system.subscribers(type(event))
        for target in targets:
            await self.tell(target, event)
        if also is not None and also not in targets:
            await self.tell(also, event)


class _Pass(NamedTuple):
    sent: int
    more: bool  # a full batch went out: there may be more right away
    busy: bool  # another relay holds the lock


_DUE_ROWS = """
SELECT o.seq, o.id, o.actor, o.shard, o.trace_id, o.attempts, o.envelope
FROM runtime_outbox o
WHERE o.sent_at IS NULL
  AND NOT EXISTS (
      -- held back: an earlier row of the same shard (or this one) waits for its retry
      SELECT 1 FROM runtime_outbox b
      WHERE b.sent_at IS NULL AND b.actor = o.actor AND b.shard = o.shard
        AND b.seq <= o.seq AND b.retry_at > now()
  )
ORDER BY o.seq
LIMIT $1
"""


class Outbox:
    """The outbox of one node: the pool transactions use, and the relay that delivers.

    Give one to `ActorSystem(..., outbox=Outbox(pool))`; the system starts the relay with
    itself and stops it with its intake. `relay=False` makes a write-only outbox (rows are
    left for the relays of other systems on the same database).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        relay: bool = True,
        interval: float = 1.0,
        batch_size: int = 500,
        send_timeout: float = 10.0,
        backoff: Backoff = RELAY_BACKOFF,
        sent_retention: float = 24 * 3600.0,
        inbox_retention: float = 7 * 24 * 3600.0,
        prune_interval: float = 600.0,
    ) -> None:
        if interval <= 0 or batch_size < 1 or send_timeout <= 0:
            raise ValueError("interval, batch_size and send_timeout must be positive")
        self.pool = pool
        self.relay = relay
        self.interval = interval
        self.batch_size = batch_size
        self.send_timeout = send_timeout
        self.backoff = backoff  # before the next try of a row that failed to send
        # before the next pass after a pass that failed (the database is away)
        self._pass_backoff = Backoff(interval / 4, max(interval * 30, 5.0))
        self.sent_retention = sent_retention
        self.inbox_retention = inbox_retention
        self.prune_interval = prune_interval
        self._system: ActorSystem | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self, system: ActorSystem) -> None:
        """Bind to the system whose codec and transport deliver; start the relay task."""
        if self._system is not None and self._system is not system:
            raise RuntimeError("an Outbox belongs to one ActorSystem")
        self._system = system
        if self.relay and self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"outbox-relay:{system.node_id}"
            )

    def notify(self) -> None:
        """Rows were committed: deliver them now rather than at the next sweep."""
        self._wake.set()

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the pass in progress finish (up to `timeout`), then stop the relay.

        A pass cut off here rolls back: its rows stay unsent and go out again later.
        """
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=max(timeout, 0.0))
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            log.warning("outbox_relay_cut_off", timeout_s=timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # the first sweep waits one interval: actors are spawned right after start()
        wait = self.interval
        busy_wait = 0.01
        failures = 0
        next_prune = loop.time() + self.interval
        while True:
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            if self._stopping:  # checked after the wait: stop() wakes it to end
                return
            # cleared before the pass: a commit during it wakes the next one
            self._wake.clear()
            try:
                outcome = await self._deliver()
                if loop.time() >= next_prune:
                    await self.prune()
                    next_prune = loop.time() + self.prune_interval
            except Exception as error:
                failures += 1
                wait = self._pass_backoff.delay(failures)
                log.error(
                    "outbox_relay_failed",
                    error=f"{type(error).__name__}: {error}",
                    failures=failures,
                    retry_in_s=round(wait, 3),
                )
                continue
            failures = 0
            if outcome.busy:
                # another node is sending; rows committed here may be past its snapshot
                wait, busy_wait = busy_wait, min(busy_wait * 2, self.interval)
            else:
                busy_wait = 0.01
                wait = 0.0 if outcome.more else self.interval

    async def _deliver(self) -> _Pass:
        """One relay pass: send what is due, in order, and mark it sent, in one transaction."""
        system = self._system
        assert system is not None, "Outbox.start() binds the system"
        transport, codec = system.transport, system.codec
        async with self.pool.acquire() as connection, connection.transaction():
            if not await connection.fetchval("SELECT pg_try_advisory_xact_lock($1)", _RELAY_LOCK):
                return _Pass(sent=0, more=False, busy=True)
            rows = await connection.fetch(_DUE_ROWS, self.batch_size)
            sent: list[int] = []
            failed: list[tuple[int, str, float]] = []
            held: set[tuple[str, int]] = set()
            for row in rows:
                stream = (row["actor"], row["shard"])
                if stream in held:
                    continue  # keeps the shard's order behind a row that failed just now
                try:
                    envelope = codec.decode(row["envelope"])
                    if not transport.try_send(envelope):
                        async with asyncio.timeout(self.send_timeout):
                            await transport.send(envelope)
                except Exception as error:
                    held.add(stream)
                    attempts = row["attempts"] + 1
                    delay = self.backoff.delay(attempts)
                    failed.append((row["seq"], f"{type(error).__name__}: {error}", delay))
                    log.warning(
                        "outbox_send_failed",
                        id=row["id"],
                        actor=row["actor"],
                        shard=row["shard"],
                        trace_id=row["trace_id"],
                        attempts=attempts,
                        retry_in_s=round(delay, 3),
                        error=f"{type(error).__name__}: {error}",
                    )
                    continue
                sent.append(row["seq"])
            flush = getattr(transport, "flush_now", None)
            if sent and flush is not None:
                # a buffering transport has only queued them: "sent" must mean "landed"
                async with asyncio.timeout(self.send_timeout):
                    await flush()
            if sent:
                await connection.execute(
                    "UPDATE runtime_outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])", sent
                )
            if failed:
                await connection.executemany(
                    "UPDATE runtime_outbox SET attempts = attempts + 1, last_error = $2,"
                    " retry_at = now() + make_interval(secs => $3) WHERE seq = $1",
                    failed,
                )
        if sent:
            log.debug("outbox_delivered", count=len(sent), node=system.node_id)
        return _Pass(sent=len(sent), more=len(rows) == self.batch_size, busy=False)

    async def prune(self) -> tuple[int, int]:
        """Delete sent rows and inbox marks past their retention; how many of each."""
        outbox = await self._delete_chunks(
            "DELETE FROM runtime_outbox WHERE seq IN (SELECT seq FROM runtime_outbox"
            " WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2)",
            self.sent_retention,
        )
        inbox = await self._delete_chunks(
            "DELETE FROM runtime_inbox WHERE (actor, message_id) IN (SELECT actor, message_id"
            " FROM runtime_inbox WHERE handled_at < now() - make_interval(secs => $1) LIMIT $2)",
            self.inbox_retention,
        )
        if outbox or inbox:
            log.info("outbox_pruned", sent_rows=outbox, inbox_rows=inbox)
        return outbox, inbox

    async def _delete_chunks(self, query: str, retention: float) -> int:
        total = 0
        while True:
            status = await self.pool.execute(query, retention, _PRUNE_CHUNK)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < _PRUNE_CHUNK:
                return total
