"""The chat bench's receivers: WebSocket clients in a process of their own.

    python -m tests.bench.chat_receivers --plan plan.json

The plan names every socket this process opens: its URL (`ws://.../api/v1/ws?access_token=`),
the user it belongs to and the conversation (an index) whose messages it should get. Each
socket must answer its `hello` first. Every `chat_message` frame whose text is one of the
bench's (`bench <k> <due>`: the message's number and the CLOCK_MONOTONIC second it was due
to be sent) is recorded as (socket, k, received - due); CLOCK_MONOTONIC is one clock for
every process of the machine, so the sender's due time and the receiver's clock compare.

Driven over JSON lines, like redis_node.py. On stdout: `connected` (every socket open and
greeted), then per `drain` command a `result`, and `closed` at the end; `error` replaces
any of them on failure. On stdin:

    {"op": "drain", "posted": [[k, conversation], ...], "measured_from": k0, "timeout": 30}
    {"op": "quit"}            (or end of file)

`drain` waits until every socket of each posted message's conversation has it (or the
timeout), then reports the latencies of messages k >= measured_from, the deliveries
expected and made (over every posted message), each message's latest delivery here,
duplicates, frames about messages never posted, and this process's CPU seconds. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import msgspec

HELLO_TIMEOUT_S = 60.0
BENCH_PREFIX = "bench "
DRAIN_POLL_S = 0.1


class _Frame(msgspec.Struct):
    """The fields of a live frame the receivers look at (others are ignored)."""

    type: str
    text: str = ""
    conversation_id: str = ""


@dataclass
class _Socket:
    """One WebSocket: where it connects, whose it is, what it heard."""

    url: str
    user_id: str
    conversation: int
    heard: dict[int, float] = field(default_factory=dict)  # k -> latency (s)
    duplicates: int = 0
    closed_early: bool = False


class Receivers:
    """The sockets of this process and their reader tasks."""

    def __init__(self, sockets: list[_Socket], connect_concurrency: int) -> None:
        self.sockets = sockets
        self.connect_concurrency = connect_concurrency
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), trust_env=False
        )
        self.open: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task[None]] = []
        self.closing = False
        self.bad_frames = 0

    async def connect(self) -> float:
        started = time.perf_counter()
        gate = asyncio.Semaphore(self.connect_concurrency)

        async def one(socket: _Socket) -> None:
            async with gate:
                ws = await self.session.ws_connect(
                    socket.url, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
                )
                self.open.append(ws)
                hello = await asyncio.wait_for(ws.receive(), HELLO_TIMEOUT_S)
                if hello.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"a socket's first message was {hello.type}")
                body = json.loads(hello.data)
                if body.get("type") != "hello" or body.get("user_id") != socket.user_id:
                    raise RuntimeError(f"a socket's first frame was {body!r}")
                self.readers.append(asyncio.create_task(self._read(ws, socket)))

        await asyncio.gather(*(one(s) for s in self.sockets))
        return time.perf_counter() - started

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, socket: _Socket) -> None:
        clock = time.monotonic
        decode = msgspec.json.Decoder(_Frame).decode
        heard = socket.heard
        async for message in ws:
            received = clock()
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                frame = decode(message.data)
            except msgspec.ValidationError:
                self.bad_frames += 1
                continue
            if frame.type != "chat_message" or not frame.text.startswith(BENCH_PREFIX):
                continue
            _, number, due = frame.text.split(" ", 2)
            k = int(number)
            if k in heard:
                socket.duplicates += 1
            else:
                heard[k] = received - float(due)
        if not self.closing:
            socket.closed_early = True

    async def drain(self, command: dict[str, Any]) -> dict[str, Any]:
        """Wait for every posted message at every socket of its conversation; the tally."""
        posted: dict[int, int] = {int(k): int(c) for k, c in command["posted"]}
        measured_from = int(command["measured_from"])
        by_conversation: dict[int, int] = {}
        for conversation in posted.values():
            by_conversation[conversation] = by_conversation.get(conversation, 0) + 1
        expected = sum(by_conversation.get(s.conversation, 0) for s in self.sockets)
        cpu = time.process_time()

        def delivered() -> int:
            return sum(1 for s in self.sockets for k in s.heard if posted.get(k) == s.conversation)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(command["timeout"])
        count = delivered()
        while count < expected and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)  # a count, not a wait on every frame
            count = delivered()
        latencies: list[float] = []
        worst: dict[int, float] = {}  # k -> its latest delivery (ms)
        stray = 0
        missing_by_socket: list[int] = []
        for s in self.sockets:
            got = 0
            for k, latency in s.heard.items():
                if posted.get(k) != s.conversation:
                    stray += 1
                    continue
                got += 1
                shown = round(latency * 1000, 3)
                if shown > worst.get(k, float("-inf")):
                    worst[k] = shown
                if k >= measured_from:
                    latencies.append(shown)
            missing_by_socket.append(by_conversation.get(s.conversation, 0) - got)
        result = {
            "event": "result",
            "expected": expected,
            "delivered": count,
            "latencies_ms": latencies,
            "worst_ms_by_k": worst,
            "duplicates": sum(s.duplicates for s in self.sockets),
            "stray": stray,
            "sockets_missing_some": sum(1 for m in missing_by_socket if m > 0),
            "closed_early": sum(1 for s in self.sockets if s.closed_early),
            "bad_frames": self.bad_frames,
            "cpu_s": round(time.process_time() - cpu, 3),
        }
        for s in self.sockets:  # the next drain counts afresh
            s.heard.clear()
            s.duplicates = 0
        return result

    async def close(self) -> int:
        self.closing = True
        gate = asyncio.Semaphore(100)

        async def one(ws: aiohttp.ClientWebSocketResponse) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await ws.close()

        await asyncio.gather(*(one(ws) for ws in self.open))
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.session.close()
        return sum(1 for s in self.sockets if s.closed_early)


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
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def serve(plan_path: Path) -> None:
    """Connect the plan's sockets, then drain rounds until told to quit."""
    protocol = _Protocol()
    plan = json.loads(plan_path.read_text())
    sockets = [
        _Socket(url=s["url"], user_id=s["user_id"], conversation=int(s["conversation"]))
        for s in plan["sockets"]
    ]
    receivers = Receivers(sockets, int(plan.get("connect_concurrency", 50)))
    try:
        try:
            seconds = await receivers.connect()
        except Exception as error:
            protocol.emit({"event": "error", "message": f"{type(error).__name__}: {error}"})
            return
        protocol.emit({"event": "connected", "sockets": len(receivers.readers), "seconds": seconds})
        commands = await _commands()
        while True:
            line = await commands.readline()
            if not line:
                return
            command = json.loads(line)
            if command.get("op") != "drain":
                return
            protocol.emit(await receivers.drain(command))
    finally:
        closed_early = await receivers.close()
        protocol.emit({"event": "closed", "closed_early": closed_early})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.chat_receivers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--plan", type=Path, required=True, help="the sockets, as JSON")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
