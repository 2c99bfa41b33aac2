"""What the node wraps around every hosted actor's handlers (node.py installs it at spawn).

The runtime has no per-message hook, so this wraps the handler table each actor builds in
`bind` (the runtime calls `bind`, then `on_start`, then reads the table). Per message:

- a refusal (a DomainError) is logged once where it happens, with the trace id of the
  request that caused it, so a request can be followed to the node that said no;
- an ask that fails because the database is unreachable (connection refused or lost, the
  server starting up or shutting down, the pool unable to connect) is refused with
  `database_unavailable` (503 at the edge) at once, instead of crashing the shard, retrying
  and waiting until the asker's timeout; tells keep the crash-retry-dead-letter path, so a
  message that must happen is never dropped;
- with span export on (SPLITGO_OTEL_ENDPOINT), a span per message, in the message's trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from actors.runtime import Actor, ActorSystem, DomainError
from splitgo.tracing import Tracing

log = structlog.get_logger("splitgo.actors")

RETRY_AFTER_S = 2


class DatabaseUnavailable(DomainError):
    """The database could not be reached for this request; it changed nothing. Retry."""

    code = "database_unavailable"
    category = "unavailable"


# asyncpg's own errors that mean "no usable connection", whatever the statement was
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.CannotConnectNowError,  # 57P03: starting up, shutting down, in recovery
    asyncpg.AdminShutdownError,  # 57P01: the server was stopped under the connection
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.ConnectionDoesNotExistError,  # the connection was lost mid-statement
)


def database_down(error: BaseException) -> bool:
    """True when `error` says the database is unreachable, not that a statement is wrong."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    if isinstance(error, asyncpg.InterfaceError):
        text = str(error)
        return "connection" in text and ("closed" in text or "lost" in text)
    if isinstance(error, OSError | TimeoutError):
        # a socket error is the database's only when asyncpg was connecting or talking
        return _raised_in_asyncpg(error)
    return False


def _raised_in_asyncpg(error: BaseException) -> bool:
    trace = error.__traceback__
    while trace is not None:
        if str(trace.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        trace = trace.tb_next
    return False


MessageHandler = Callable[[Any], Awaitable[Any]]


def instrumented(factory: Callable[[], Actor], tracing: Tracing | None) -> Callable[[], Actor]:
    """`factory`, with every actor it builds wrapped as the module says."""

    def build() -> Actor:
        actor = factory()
        bind = actor.bind

        def bind_and_wrap(*, name: str, shard: int, system: ActorSystem) -> None:
            bind(name=name, shard=shard, system=system)
            actor.dispatch = {
                message_type: _wrap(actor, message_type.__name__, handler, tracing)
                for message_type, handler in actor.dispatch.items()
            }

        actor.bind = bind_and_wrap  # type: ignore[method-assign]
        return actor

    return build


def _wrap(
    actor: Actor, message_name: str, handler: MessageHandler, tracing: Tracing | None
) -> MessageHandler:
    if tracing is not None:
        return _traced(actor, message_name, handler, tracing)

    async def handle(message: Any) -> Any:
        try:
            return await handler(message)
        except DomainError as error:
            _refused(actor, message_name, error)
            raise
        except Exception as error:
            _maybe_unavailable(actor, message_name, error)
            raise

    return handle


def _traced(
    actor: Actor, message_name: str, handler: MessageHandler, tracing: Tracing
) -> MessageHandler:
    async def handle(message: Any) -> Any:
        envelope = actor.envelope
        span = tracing.start(
            f"{actor.name} {message_name}",
            kind="consumer",
            attributes={
                "splitgo.actor": actor.name,
                "splitgo.shard": actor.shard,
                "splitgo.message": message_name,
                "splitgo.node": actor.system.node_id,
                "splitgo.kind": envelope.kind if envelope is not None else "batch",
                "splitgo.attempt": envelope.attempt if envelope is not None else 0,
            },
        )
        try:
            return await handler(message)
        except DomainError as error:
            span.set("splitgo.refused", error.code)
            _refused(actor, message_name, error)
            raise
        except Exception as error:
            span.fail(f"{type(error).__name__}: {error}")
            _maybe_unavailable(actor, message_name, error)
            raise
        finally:
            span.end()

    return handle


def _refused(actor: Actor, message_name: str, error: DomainError) -> None:
    log.info(
        "actor_refused",
        actor=actor.name,
        shard=actor.shard,
        message=message_name,
        code=error.code,
        category=error.category,
    )


def _maybe_unavailable(actor: Actor, message_name: str, error: Exception) -> None:
    """Raise DatabaseUnavailable instead of `error` for an ask the database failed."""
    envelope = actor.envelope
    if envelope is None or envelope.kind != "ask" or not database_down(error):
        return
    log.warning(
        "database_unavailable",
        actor=actor.name,
        shard=actor.shard,
        message=message_name,
        error=f"{type(error).__name__}: {error}",
    )
    raise DatabaseUnavailable(
        "the database is unreachable for the moment; try again shortly",
        details={"retry_after": RETRY_AFTER_S},
    ) from error
