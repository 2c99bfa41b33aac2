"""The receiving node of the Redis bench, in a process of its own.

    python -m tests.bench.redis_node --url redis://127.0.0.1:6379/0 --mode splitgo --shards 4

Two modes, one per kind of receiver the bench compares:

* splitgo: per round, an ActorSystem on a RedisStreamsTransport of its own (its own node
  id, the round's key prefix) hosting the actor `bench` with `shards` shards and a key
  function. The actor counts BenchKeyed messages, checks that each key's sequence numbers
  arrive in order and, in a latency round, records now - the message's send time.
* bare: per round, one consumer group on `shards` plain streams, read with redis-py
  (hiredis): XREADGROUP (COUNT 256, BLOCK) over all streams, then one pipeline with one
  XACK per stream per batch. Nothing is decoded; a latency round reads the field `t`.

The process is driven by the bench over JSON lines. On stdin:

    {"op": "round", "prefix": "...", "n": 20000, "latency": false}
    {"op": "quit"}            (or end of file)

On stdout, in this order for every round: `ready` (the shards are leased and the groups
exist: the sender may start), `done` (all n handled: wall-clock ns of the first and the
last one handled, CPU seconds this process spent from ready to done, and in a latency
round every one-way latency in microseconds), then `closed` (the round's node is
stopped; the final count and the number of per-key order violations). `error` replaces
any of them on failure. Logs go to stderr, so stdout carries the protocol alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import redis.asyncio as redis
import structlog
from redis.exceptions import ResponseError

from actors.runtime import Actor, ActorSystem, MemoryDeadLetterStore, handles
from transport import Codec, Message
from transport.redis_streams import RedisStreamsTransport

ACTOR = "bench"
BARE_GROUP = "bench"
BARE_CONSUMER = "bare-receiver"
BARE_READ_COUNT = 256
BLOCK_MS = 1000
# a bare stream is bounded like splitgo's (its send script adds MAXLEN ~ 1,000,000)
STREAM_MAXLEN = 1_000_000
SETUP_TIMEOUT_S = 20.0
ROUND_TIMEOUT_S = 120.0

Emit = Callable[[dict[str, Any]], None]


class BenchKeyed(Message, frozen=True, kw_only=True):
    """The keyed one-way message: `n` counts up per sender, `sent_ns` is time.time_ns()
    at the tell in a latency round (0 otherwise)."""

    key: str
    n: int
    sent_ns: int = 0


def message_key(message: Any) -> str | None:
    """The route's key function: messages of one key go to one shard, in order."""
    return getattr(message, "key", None)


def shard_of(key: str, shards: int) -> int:
    """The shard splitgo's Route picks for a key (CRC-32, the same on every node)."""
    return zlib.crc32(key.encode()) % shards


def bare_stream(prefix: str, shard: int) -> str:
    return f"{prefix}:bare:{shard}"


class Tally:
    """What the receiver has handled this round, shared by every shard's actor."""

    __slots__ = (
        "count",
        "done",
        "first_ns",
        "last_n",
        "last_ns",
        "latencies",
        "order_errors",
        "target",
    )

    def __init__(self, target: int, latency: bool) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()
        self.first_ns = 0
        self.last_ns = 0
        self.latencies: list[int] | None = [] if latency else None
        self.last_n: dict[str, int] = {}
        self.order_errors = 0


class CountingActor(Actor):
    """Counts BenchKeyed messages; notes latency and per-key order."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    @handles(BenchKeyed)
    async def on_keyed(self, message: BenchKeyed) -> None:
        tally = self.tally
        if tally.latencies is not None:
            tally.latencies.append(time.time_ns() - message.sent_ns)
        if message.n <= tally.last_n.get(message.key, -1):
            tally.order_errors += 1
        tally.last_n[message.key] = message.n
        tally.count += 1
        if tally.count == 1:
            tally.first_ns = time.time_ns()
        if tally.count == tally.target:
            tally.last_ns = time.time_ns()
            tally.done.set()


def _done(tally: Tally, cpu_started: float) -> dict[str, Any]:
    return {
        "event": "done",
        "count": tally.count,
        "first_ns": tally.first_ns,
        "last_ns": tally.last_ns,
        "cpu_s": time.process_time() - cpu_started,
        "latencies_us": None
        if tally.latencies is None
        else [value // 1000 for value in tally.latencies],
    }


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.005)


async def splitgo_round(
    url: str, shards: int, prefix: str, n: int, latency: bool, emit: Emit
) -> None:
    """Host the counting actor under `prefix` until it has handled n messages."""
    tally = Tally(n, latency)
    codec = Codec()
    node_id = f"bench-receiver-{os.getpid()}"
    transport = RedisStreamsTransport(node_id=node_id, url=url, codec=codec, prefix=prefix)
    system = ActorSystem(transport, codec=codec, dead_letters=MemoryDeadLetterStore())
    try:
        await system.start()
        system.spawn(
            CountingActor,
            ACTOR,
            factory=lambda: CountingActor(tally),
            shards=shards,
            key=message_key,
        )
        await _until(
            lambda: len(transport.owned_shards(ACTOR)) == shards,
            SETUP_TIMEOUT_S,
            f"leases on all {shards} shards",
        )
        gc.collect()
        cpu_started = time.process_time()
        emit({"event": "ready", "node": node_id})
        try:
            await asyncio.wait_for(tally.done.wait(), ROUND_TIMEOUT_S)
        except TimeoutError:
            raise TimeoutError(f"handled {tally.count} of {n} in {ROUND_TIMEOUT_S:g} s") from None
        emit(_done(tally, cpu_started))
    finally:
        await system.stop(5.0)
        await transport.close()
    emit({"event": "closed", "count": tally.count, "order_errors": tally.order_errors})


async def bare_round(
    client: redis.Redis, shards: int, prefix: str, n: int, latency: bool, emit: Emit
) -> None:
    """Read n entries from the round's bare streams, acking each batch."""
    streams = [bare_stream(prefix, shard) for shard in range(shards)]
    for stream in streams:
        try:
            await client.xgroup_create(stream, BARE_GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
    tally = Tally(n, latency)
    latencies = tally.latencies
    wanted: dict[Any, Any] = dict.fromkeys(streams, ">")
    gc.collect()
    cpu_started = time.process_time()
    emit({"event": "ready", "node": BARE_CONSUMER})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROUND_TIMEOUT_S
    while tally.count < n:
        if loop.time() > deadline:
            raise TimeoutError(f"read {tally.count} of {n} in {ROUND_TIMEOUT_S:g} s")
        reply: Any = await client.xreadgroup(
            BARE_GROUP, BARE_CONSUMER, wanted, count=BARE_READ_COUNT, block=BLOCK_MS
        )
        if not reply:
            continue
        now = time.time_ns()
        if not tally.count:
            tally.first_ns = now
        async with client.pipeline(transaction=False) as pipe:
            for stream, entries in reply:
                tally.count += len(entries)
                if latencies is not None:
                    latencies.extend(now - int(fields[b"t"]) for _id, fields in entries)
                pipe.xack(stream, BARE_GROUP, *[entry_id for entry_id, _fields in entries])
            if tally.count >= n:
                tally.last_ns = now
            await pipe.execute()
    emit(_done(tally, cpu_started))
    emit({"event": "closed", "count": tally.count, "order_errors": 0})


class _Protocol:
    """JSON lines out on the real stdout; everything else printed goes to stderr."""

    def __init__(self) -> None:
        self._out: TextIO = sys.stdout
        sys.stdout = sys.stderr

    def emit(self, event: dict[str, Any]) -> None:
        self._out.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._out.flush()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(mode: str, url: str, shards: int) -> None:
    """Run rounds as the bench asks for them, until it says quit or closes stdin."""
    protocol = _Protocol()
    emit = protocol.emit
    client = redis.Redis.from_url(url)
    run_round: Callable[[str, int, bool], Awaitable[None]]
    if mode == "splitgo":

        def run_round(prefix: str, n: int, latency: bool) -> Awaitable[None]:
            return splitgo_round(url, shards, prefix, n, latency, emit)

    else:

        def run_round(prefix: str, n: int, latency: bool) -> Awaitable[None]:
            return bare_round(client, shards, prefix, n, latency, emit)

    try:
        await client.ping()
        emit({"event": "hello", "mode": mode, "pid": os.getpid()})
        commands = await _commands()
        while True:
            line = await commands.readline()
            if not line:
                return
            command = json.loads(line)
            if command.get("op") != "round":
                return
            try:
                await run_round(str(command["prefix"]), int(command["n"]), bool(command["latency"]))
            except Exception as error:
                emit({"event": "error", "message": f"{type(error).__name__}: {error}"})
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.redis_node", description=__doc__)
    parser.add_argument("--url", required=True, help="the Redis to use")
    parser.add_argument("--mode", choices=("splitgo", "bare"), required=True)
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    asyncio.run(serve(args.mode, args.url, args.shards))
    return 0


if __name__ == "__main__":
    sys.exit(main())
