"""Spans for actor messages: what the node wraps around every hosted actor's handlers when
span export is on (SPLITGO_OTEL_ENDPOINT). Refusals and database outages are the
runtime's own business (actors/runtime/shard.py); this adds only the tracing.

The runtime has no per-message hook, so this wraps the handler table each actor builds in
`bind` (the runtime calls `bind`, then `on_start`, then reads the table).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.runtime import Actor, ActorSystem, DomainError
from splitgo.tracing import Tracing

MessageHandler = Callable[[Any], Awaitable[Any]]


def instrumented(factory: Callable[[], Actor], tracing: Tracing | None) -> Callable[[], Actor]:
    """`factory`, with every actor it builds traced (unchanged without span export)."""
    if tracing is None:
        return factory

    def build() -> Actor:
        actor = factory()
        bind = actor.bind

        def bind_and_wrap(*, name: str, shard: int, system: ActorSystem) -> None:
            bind(name=name, shard=shard, system=system)
            actor.dispatch = {
                message_type: _traced(actor, message_type.__name__, handler, tracing)
                for message_type, handler in actor.dispatch.items()
            }

        actor.bind = bind_and_wrap  # type: ignore[method-assign]
        return actor

    return build


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
            raise
        except Exception as error:
            span.fail(f"{type(error).__name__}: {error}")
            raise
        finally:
            span.end()

    return handle
