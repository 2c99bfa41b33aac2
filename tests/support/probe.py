"""A test actor that node processes load with SPLITGO_PLUGINS=tests.support.probe.

It writes every effect to PostgreSQL through the runtime's transaction API, so the
inbox makes a redelivered message harmless and the tests can count rows. The tables are
created by the tests (see PROBE_SCHEMA) before the nodes start.
"""

from __future__ import annotations

import asyncpg

from actors.runtime import Actor, handles
from splitgo.node import ActorSpec, NodeParts, register
from tests.support import probe_messages
from tests.support.probe_messages import Echo, Echoed, Explode, ProbeRefused, Record, Refuse

PROBE_SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_effects (
    id      bigserial PRIMARY KEY,
    key     text NOT NULL,
    seq     integer NOT NULL,
    node    text NOT NULL
);
CREATE TABLE IF NOT EXISTS probe_switches (name text PRIMARY KEY, on_ boolean NOT NULL);
"""

SHARDS = 8


class Probe(Actor):
    """Records effects once each; explodes until switched off; echoes; refuses."""

    def __init__(self, pool: asyncpg.Pool, node: str) -> None:
        self.pool = pool
        self.node = node

    @handles(Record)
    async def record(self, message: Record) -> None:
        async with self.transaction() as tx:
            if tx.duplicate:
                return
            await tx.execute(
                "INSERT INTO probe_effects (key, seq, node) VALUES ($1, $2, $3)",
                message.key,
                message.seq,
                self.node,
            )

    @handles(Explode)
    async def explode(self, message: Explode) -> None:
        fixed = await self.pool.fetchval("SELECT on_ FROM probe_switches WHERE name = 'fixed'")
        if not fixed:
            raise RuntimeError(f"probe exploded on {message.key}")
        await self.record(Record(key=message.key, seq=0))

    @handles(Echo)
    async def echo(self, message: Echo) -> Echoed:
        return Echoed(text=message.text, node=self.node)

    @handles(Refuse)
    async def refuse(self, message: Refuse) -> None:
        raise ProbeRefused(f"refused: {message.reason}")


def build(parts: NodeParts) -> Probe:
    return Probe(parts.database.pool, parts.settings.node_id)


register(
    ActorSpec(
        name="probe",
        actor_type=Probe,
        build=build,
        messages=probe_messages,
        shards=SHARDS,
        key=lambda message: getattr(message, "key", None),
    )
)
