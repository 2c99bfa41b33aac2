"""The actor runtime: actors, sharded groups, supervision, timers, dead letters, statistics,
and reliable hand-off (outbox relay, inbox).

What every actor needs comes from here, once: `Actor` and `@handles`; the `Context` an actor
hands its feature parts; transactions with `tx.tell` and `tx.publish` (subscribers declared
with `ActorSystem.subscribe`); the store `Executor` protocol; the `Backoff` policy; clocks and
`rfc3339`; typed errors; idempotency keys recorded with the effect (`KeyTable`,
`Context.replayed` / `Context.remember`).
"""

from __future__ import annotations

from actors.runtime.actor import Actor, handles
from actors.runtime.backoff import Backoff
from actors.runtime.clock import Clock, at, rfc3339, utc_now, wall_clock
from actors.runtime.context import bind_trace_id, current_trace_id
from actors.runtime.cursors import InvalidCursor, row_cursor
from actors.runtime.dead_letters import (
    DeadLetter,
    DeadLetterStore,
    MemoryDeadLetterStore,
    PgDeadLetterStore,
)
from actors.runtime.errors import (
    REPLY_LATER,
    AskTimeout,
    DatabaseUnavailable,
    DomainError,
    Failure,
    HandlerFailed,
    InvalidInput,
    RemoteError,
    ReplyLater,
    SystemStopping,
    UnhandledMessage,
    UnknownActor,
)
from actors.runtime.idempotency import (
    IdempotencyConflict,
    IdempotencyInFlight,
    IdempotencyKey,
    KeyTable,
)
from actors.runtime.outbox import Outbox, OutboxUnavailable, Transaction, TransactionMisuse
from actors.runtime.parts import Context
from actors.runtime.stats import ShardStatus
from actors.runtime.store import Executor
from actors.runtime.supervision import RestartPolicy
from actors.runtime.system import ActorRef, ActorSystem
from transport import Envelope, Message

__all__ = [
    "REPLY_LATER",
    "Actor",
    "ActorRef",
    "ActorSystem",
    "AskTimeout",
    "Backoff",
    "Clock",
    "Context",
    "DatabaseUnavailable",
    "DeadLetter",
    "DeadLetterStore",
    "DomainError",
    "Envelope",
    "Executor",
    "Failure",
    "HandlerFailed",
    "IdempotencyConflict",
    "IdempotencyInFlight",
    "IdempotencyKey",
    "InvalidCursor",
    "InvalidInput",
    "KeyTable",
    "MemoryDeadLetterStore",
    "Message",
    "Outbox",
    "OutboxUnavailable",
    "PgDeadLetterStore",
    "RemoteError",
    "ReplyLater",
    "RestartPolicy",
    "ShardStatus",
    "SystemStopping",
    "Transaction",
    "TransactionMisuse",
    "UnhandledMessage",
    "UnknownActor",
    "at",
    "bind_trace_id",
    "current_trace_id",
    "handles",
    "rfc3339",
    "row_cursor",
    "utc_now",
    "wall_clock",
]
