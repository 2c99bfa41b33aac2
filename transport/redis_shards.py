"""The hosting side of the Redis Streams transport: shard leases and membership.

Every node that hosts an actor type runs one `ShardHost` for it. The host keeps a
membership entry alive, takes free shards by lease up to its fair share, gives extras
back when more nodes join, claims what a dead owner left pending (and what an older
version left in the keys before the hash tags, redis_legacy.py), and reads the streams
of the shards it owns (redis_reader.py), feeding each shard's local mailbox
(redis_mailbox.py).
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from typing import TYPE_CHECKING, Any

import structlog

from transport.redis_keys import REDIS_DOWN, TRANSIENT
from transport.redis_legacy import carry_over_quietly
from transport.redis_mailbox import RedisMailbox, as_bytes, as_str, cancel_and_wait
from transport.redis_reader import ShardReader

if TYPE_CHECKING:
    from transport.redis_streams import RedisStreamsTransport

__all__ = ["RedisMailbox", "ShardHost", "cancel_and_wait"]

log = structlog.get_logger("transport.redis")


class ShardHost(ShardReader):
    """Leases, membership and the blocking reader for one actor type on this node."""

    def __init__(self, transport: RedisStreamsTransport, actor: str) -> None:
        super().__init__(transport, actor)
        self._tasks: list[asyncio.Task[None]] = []
        self._handing_back: set[asyncio.Task[None]] = set()
        # shards whose lease this round renewed (or kept through a passing failure)
        self._renewed: set[int] = set()
        # owned shards whose old keys (before the hash tags) are still to be carried over
        self._carry_later: set[int] = set()

    def add(self, shard: int, capacity: int) -> RedisMailbox:
        mailbox = RedisMailbox(self, shard, capacity)
        self.mailboxes[shard] = mailbox
        if self._tasks and self.transport.cluster:
            self._tasks.append(self._reader_task(mailbox))  # a shard added after start
        return mailbox

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep_leases(), name=f"leases:{self.actor}")]
        if self.transport.cluster:
            self._tasks += [self._reader_task(m) for m in self.mailboxes.values()]
        else:
            self._tasks.append(self._reader_task(None))

    # ── leases ───────────────────────────────────────────────────────────────────────

    async def _keep_leases(self) -> None:
        transport = self.transport
        while True:
            self._renewed = set()
            try:
                await self.balance()
                transport.note_healthy()
            except REDIS_DOWN as error:
                transport.note_unhealthy(error)
                # keep the shards whose lease this round renewed (on a cluster, those on
                # the masters still there): the next round comes before they expire
                self._revoke_all(keep=self._renewed)
            except Exception:
                # a bug here must not end lease renewal for good: log it and try again
                log.exception("lease_keeping_failed", actor=self.actor)
                self._revoke_all()
            await asyncio.sleep(transport.lease_ttl / 3)

    async def balance(self) -> None:
        """Renew what we hold, then take free shards up to a fair share or give extras back."""
        transport = self.transport
        client = transport.client
        keys = transport.keys
        ttl_ms = int(transport.lease_ttl * 1000)
        loop = asyncio.get_running_loop()
        members = keys.members(self.actor)
        # leases first: a master that is away (its members key or another shard's lease
        # on it) must not keep this node from renewing the leases on the others
        owned = [m for m in self.mailboxes.values() if m.owned]
        if owned:
            renewed = await self._renew(owned, ttl_ms)
            for mailbox, still_ours in zip(owned, renewed, strict=True):
                if (
                    isinstance(still_ours, TRANSIENT)
                    and mailbox.lease_expires_at - loop.time() > transport.lease_ttl / 2
                ):
                    # unknown, but the lease lasts well past the next round (a third of
                    # it away): keep the shard through a passing failure, such as its slot
                    # moving between masters, rather than leave it unowned a lease long.
                    # One round may fail; the next, past half the lease, revokes it while
                    # a third of the lease is still left (rounds are at least a third
                    # apart, so ttl/4 let a second deferral run past the expiry). Its
                    # reader stops before the lease could end (see ShardReader._read)
                    log.warning(
                        "shard_lease_renewal_deferred",
                        actor=self.actor,
                        shard=mailbox.shard,
                        error=str(still_ours),
                    )
                    self._renewed.add(mailbox.shard)
                elif isinstance(still_ours, BaseException):
                    # unknown: its master is away, and with it the shard's stream
                    log.warning(
                        "shard_lease_not_renewed",
                        actor=self.actor,
                        shard=mailbox.shard,
                        error=str(still_ours),
                    )
                    mailbox.revoke()
                elif still_ours[0]:
                    mailbox.lease_expires_at = loop.time() + transport.lease_ttl
                    self._renewed.add(mailbox.shard)
                else:
                    log.warning("shard_lease_lost", actor=self.actor, shard=mailbox.shard)
                    mailbox.revoke()
        now_ms = int(time.time() * 1000)
        async with client.pipeline(transaction=False) as pipe:
            pipe.zadd(members, {transport.node_id: now_ms + ttl_ms})
            pipe.zremrangebyscore(members, "-inf", now_ms)
            pipe.zcard(members)
            _, _, live = await pipe.execute()
        fair = math.ceil(len(self.mailboxes) / max(int(live), 1))
        owned_count = sum(1 for m in self.mailboxes.values() if m.owned)
        for mailbox in self._in_preferred_order():
            # a node that stopped reading (shutting down) takes no new shards
            if owned_count >= fair or not self._reading:
                break
            if mailbox.owned:
                continue
            taken = await client.set(
                keys.lease(self.actor, mailbox.shard), transport.node_id, nx=True, px=ttl_ms
            )
            if taken:
                await self._take_over(mailbox)
                mailbox.lease_expires_at = loop.time() + transport.lease_ttl
                owned_count += 1
        for shard in sorted(self._carry_later):
            mailbox = self.mailboxes[shard]
            if not mailbox.owned or await self._carry_over(mailbox):
                self._carry_later.discard(shard)
        if owned_count > fair:
            extras = [m for m in self._in_preferred_order() if m.owned][fair:]
            self._hand_back_later(extras)
        await self._trim([m for m in self.mailboxes.values() if m.owned])

    async def _renew(self, owned: list[RedisMailbox], ttl_ms: int) -> list[Any]:
        """Renew the leases, one script call each (on a Redis Cluster each shard has its own
        slot), in one pipeline; if the pipeline fails (a master away), one by one, so the
        leases on the other masters are renewed still. Per lease: [1] ours and renewed, [0]
        lost, or the error."""
        transport = self.transport
        keys = transport.keys

        async def renew(mailbox: RedisMailbox, pipe: Any = None) -> Any:
            return await transport.scripts.renew(
                keys=[keys.lease(self.actor, mailbox.shard)],
                args=[transport.node_id, ttl_ms],
                client=pipe,
            )

        try:
            async with transport.client.pipeline(transaction=False) as pipe:
                for mailbox in owned:
                    await renew(mailbox, pipe)
                return list(await pipe.execute(raise_on_error=False))
        except REDIS_DOWN:
            if not transport.cluster:
                raise  # one Redis: nothing else to renew on
        return list(await asyncio.gather(*(renew(m) for m in owned), return_exceptions=True))

    async def _trim(self, mailboxes: list[RedisMailbox]) -> None:
        """Drop entries every consumer is done with: older than both the oldest pending
        entry and the last one delivered. Never an unread or unacked entry (MAXLEN on
        send is only a safety valve far above any backlog)."""
        if not mailboxes:
            return
        client = self.transport.client
        async with client.pipeline(transaction=False) as pipe:
            for mailbox in mailboxes:
                pipe.xinfo_groups(mailbox.stream)
                pipe.xpending(mailbox.stream, self.group)
            results = await pipe.execute(raise_on_error=False)
        stranded = []
        async with client.pipeline(transaction=False) as pipe:
            for index, mailbox in enumerate(mailboxes):
                groups, pending = results[2 * index], results[2 * index + 1]
                limit = _safe_trim_id(groups, pending, self.group)
                if limit is not None:
                    pipe.xtrim(mailbox.stream, minid=limit, approximate=True)
                if _others_pending(pending, self.transport.node_id):
                    stranded.append(mailbox)
            await pipe.execute(raise_on_error=False)
        for mailbox in stranded:
            await self._claim_stranded(mailbox)

    async def _claim_stranded(self, mailbox: RedisMailbox) -> None:
        """Claim what another node left pending in a shard we own, idle a lease long. A node
        that lost a lease without noticing yet (Redis away, a failover, a stalled loop)
        may have read entries after the next owner took them over, and would hold them
        pending out of reach until some later takeover."""
        if not mailbox.owned or mailbox.read_from != ">":
            return  # while our own backlog is read again, it would hand these over twice
        transport = self.transport
        client = transport.client
        idle_ms = int(transport.lease_ttl * 1000)
        room = min(mailbox.room(), 500)  # never past the mailbox's capacity
        if room <= 0:
            return  # full: claimed at a later round
        items: list[dict[str, Any]] = await client.xpending_range(
            mailbox.stream, self.group, min="-", max="+", count=room, idle=idle_ms
        )
        earlier = {
            as_bytes(item["message_id"]): int(item["times_delivered"])
            for item in items
            if as_str(item["consumer"]) != transport.node_id
        }
        if not earlier:
            return
        tenure = mailbox.tenure
        claimed: Any = await client.xclaim(
            mailbox.stream, self.group, transport.node_id, idle_ms, list(earlier)
        )
        if not mailbox.owned or mailbox.read_from != ">" or mailbox.tenure != tenure:
            return  # lost meanwhile: they stay pending, ours now, for the next owner's claim
        for entry_id, fields in claimed:
            self._deliver_entry(mailbox, entry_id, fields, earlier.get(as_bytes(entry_id), 0))
        log.warning(
            "stranded_entries_claimed", actor=self.actor, shard=mailbox.shard, claimed=len(claimed)
        )

    def _in_preferred_order(self) -> list[RedisMailbox]:
        """Each node starts at its own offset, so nodes joining at once try different shards."""
        shards = sorted(self.mailboxes)
        start = zlib.crc32(self.transport.node_id.encode()) % max(len(shards), 1)
        return [self.mailboxes[s] for s in shards[start:] + shards[:start]]

    async def _take_over(self, mailbox: RedisMailbox) -> None:
        """Claim every entry a previous owner left pending, then re-read them first."""
        client = self.transport.client
        await self.transport.ensure_group(mailbox.stream, self.group)
        # before the shard is read: what an older version left in its old keys first
        if await self._carry_over(mailbox):
            self._carry_later.discard(mailbox.shard)
        else:
            self._carry_later.add(mailbox.shard)
        start: bytes | str = "0-0"
        claimed = 0
        while True:
            # the full reply: with justid redis-py drops the cursor
            reply = await client.xautoclaim(
                mailbox.stream, self.group, self.transport.node_id, 0, start, count=500
            )
            next_start, ids = reply[0], reply[1]
            claimed += len(ids)
            if next_start in (b"0-0", "0-0") or not ids:
                break
            start = next_start
        mailbox.attempts = await self._delivery_counts(mailbox)
        mailbox.read_from = "0"
        mailbox.tenure += 1
        mailbox.owned = True
        log.info(
            "shard_acquired",
            actor=self.actor,
            shard=mailbox.shard,
            claimed=claimed,
            pending=len(mailbox.attempts),
        )
        self._room.set()

    async def _carry_over(self, mailbox: RedisMailbox) -> bool:
        """Carry the shard's old keys over (redis_legacy.py); False: try again later."""
        return await carry_over_quietly(self.transport.carrier, self.actor, mailbox.shard)

    async def _delivery_counts(self, mailbox: RedisMailbox) -> dict[bytes, int]:
        """Earlier deliveries of what is pending for us: the entries' attempt numbers."""
        pending: list[dict[str, Any]] = await self.transport.client.xpending_range(
            mailbox.stream,
            self.group,
            min="-",
            max="+",
            count=10_000,
            consumername=self.transport.node_id,
        )
        return {
            as_bytes(item["message_id"]): max(int(item["times_delivered"]) - 1, 0)
            for item in pending
        }

    def _hand_back_later(self, mailboxes: list[RedisMailbox]) -> None:
        """Give shards back beside the lease loop: waiting for their reads in flight must
        not hold up the renewal of the leases this node keeps."""
        for mailbox in mailboxes:
            mailbox.revoke()  # at once: the next balance must not count or read them
        task = asyncio.get_running_loop().create_task(
            self._hand_back_all(mailboxes), name=f"hand-back:{self.actor}"
        )
        self._handing_back.add(task)
        task.add_done_callback(self._handing_back.discard)

    async def _hand_back_all(self, mailboxes: list[RedisMailbox]) -> None:
        try:
            for mailbox in mailboxes:
                await self.hand_back(mailbox)
        except REDIS_DOWN as error:
            # the leases not released expire by themselves
            self.transport.note_unhealthy(error)

    async def hand_back(self, mailbox: RedisMailbox, wait: float | None = None) -> None:
        """Give a shard back: stop reading it, let the message in hand finish, drop the lease."""
        mailbox.revoke()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.transport.lease_ttl / 3 if wait is None else wait)
        # polled: it runs when a shard moves, for a fraction of a lease at most
        while mailbox.unacked() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        # a read begun while the shard was ours may still take entries, which stay pending
        # here: the next owner claims those when it takes the lease, so release it only after
        # that read answered (a blocking read lasts block_ms at most)
        read_deadline = loop.time() + self.transport.block_ms / 1000 + 1.0
        while self._in_flight.get(mailbox.stream) and loop.time() < read_deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await self.transport.flush_now()
        await self.transport.scripts.release(
            keys=[self.transport.keys.lease(self.actor, mailbox.shard)],
            args=[self.transport.node_id],
        )
        log.info("shard_released", actor=self.actor, shard=mailbox.shard)

    def _revoke_all(self, keep: set[int] | None = None) -> None:
        for mailbox in self.mailboxes.values():
            if mailbox.owned and (keep is None or mailbox.shard not in keep):
                mailbox.revoke()

    async def stop_reading(self) -> None:
        self._reading = False
        for task in self._tasks[1:]:
            await cancel_and_wait(task)

    async def stop(self) -> None:
        """Hand every owned shard back and leave the membership."""
        await self.stop_reading()
        if self._tasks:
            await cancel_and_wait(self._tasks[0])
        # no read is in flight any more: shards being handed back go at once
        await asyncio.gather(*self._handing_back, return_exceptions=True)
        transport = self.transport
        try:
            for mailbox in [m for m in self.mailboxes.values() if m.owned]:
                await self.hand_back(mailbox, wait=0.5)
            await transport.client.zrem(transport.keys.members(self.actor), transport.node_id)
        except REDIS_DOWN as error:
            log.warning("shard_hand_back_failed", actor=self.actor, error=str(error))
        await self._drop_reader_connection()


def _safe_trim_id(groups: Any, pending: Any, group_name: str) -> str | None:
    """The lowest id still needed by the group, or None when that cannot be known."""
    if not isinstance(groups, list) or not isinstance(pending, dict):
        return None
    group = next((g for g in groups if as_str(g.get("name", b"")) == group_name), None)
    if group is None or group.get("last-delivered-id") is None:
        return None
    candidates = [as_str(group["last-delivered-id"])]
    if pending.get("pending") and pending.get("min") is not None:
        candidates.append(as_str(pending["min"]))
    return min(candidates, key=_id_order)


def _others_pending(pending: Any, node_id: str) -> bool:
    """Whether an XPENDING summary names a consumer other than this node."""
    if not isinstance(pending, dict) or not pending.get("pending"):
        return False
    return any(
        as_str(consumer.get("name", b"")) != node_id and int(consumer.get("pending", 0)) > 0
        for consumer in pending.get("consumers") or []
    )


def _id_order(entry_id: str) -> tuple[int, int]:
    millis, _, sequence = entry_id.partition("-")
    return int(millis), int(sequence or 0)
