"""The actor runtime: actors, sharded groups, supervision, timers, dead letters, statistics,
and reliable hand-off (outbox relay, inbox)."""

from __future__ import annotations

from actors.runtime.actor import Actor, handles
from actors.runtime.context import bind_trace_id, current_trace_id
from actors.runtime.dead_letters import (
    DeadLetter,
    DeadLetterStore,
    MemoryDeadLetterStore,
    PgDeadLetterStore,
)
from actors.runtime.errors import (
    AskTimeout,
    DatabaseUnavailable,
    DomainError,
    Failure,
    HandlerFailed,
    InvalidInput,
    RemoteError,
    SystemStopping,
    UnhandledMessage,
    UnknownActor,
)
from actors.runtime.outbox import Outbox, OutboxUnavailable, Transaction, TransactionMisuse
from actors.runtime.stats import ShardStatus
from actors.runtime.supervision import RestartPolicy
from actors.runtime.system import ActorRef, ActorSystem
from transport import Message

__all__ = [
    "Actor",
    "ActorRef",
    "ActorSystem",
    "AskTimeout",
    "DatabaseUnavailable",
    "DeadLetter",
    "DeadLetterStore",
    "DomainError",
    "Failure",
    "HandlerFailed",
    "InvalidInput",
    "MemoryDeadLetterStore",
    "Message",
    "Outbox",
    "OutboxUnavailable",
    "PgDeadLetterStore",
    "RemoteError",
    "RestartPolicy",
    "ShardStatus",
    "SystemStopping",
    "Transaction",
    "TransactionMisuse",
    "UnhandledMessage",
    "UnknownActor",
    "bind_trace_id",
    "current_trace_id",
    "handles",
]
