"""Carrying over what the untagged keys of an older version left in Redis.

Before the hash tags (redis_keys.py) a shard's stream was `<prefix>:<actor>:<shard>`, its
counter of unacked entries `<prefix>:<actor>:<shard>:n`, its lease
`<prefix>:lease:<actor>:<shard>`, the mailbox size `<prefix>:capacity:<actor>`, and every
timer of every shard waited in one sorted set, `<prefix>:timers`, as the member
`<old stream>\\n<envelope>` scored by its due time (ms). A node of this version that takes
a shard's lease moves what the old stream still owes into the new one: entries delivered
but never acked (pending) and entries nobody read, in their order, each payload byte for
byte (the envelope id the runtime's inbox deduplicates by stays the same); entries acked
before the upgrade stay behind and are deleted with the old stream. Old timers move into
their shard's new sorted set, one atomic check-and-move per timer.

Both moves are Lua scripts, so a move happens once whatever the number of nodes racing
and a crash leaves either the old key or the new one, never both. Only one Redis ever
had these keys (the old version could not use a Redis Cluster, and the scripts name keys
of several slots): on a cluster nothing is looked for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import structlog

from transport.redis_keys import REDIS_DOWN

if TYPE_CHECKING:
    from transport.redis_streams import RedisStreamsTransport

log = structlog.get_logger("transport.redis")

TIMER_BATCH = 500  # old timers moved per script call
PENDING_LIMIT = 1_000_000  # XPENDING's count: the old stream's MAXLEN bounds its entries

# KEYS[1] old stream, KEYS[2] its counter, KEYS[3] new stream, KEYS[4] its counter;
# ARGV[1] the consumer group (the actor type), ARGV[2] how many pending entries to list.
# Moves the old stream's pending and unread entries, in order, to the end of the new one,
# then puts back behind them whatever the new stream held that nobody has read yet (sent
# there before this move): one key's old messages still come before its new ones. Deletes
# the old stream and counter. Returns {pending moved, unread moved, pending lost to an
# earlier trim (nothing left to move), new entries put back behind}; nil if the old key
# is not a stream (then nothing is touched).
CARRY_OVER = """
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function later(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am > bm or (am == bm and as > bs)
end
local function last_delivered(stream, group)
  if redis.call('EXISTS', stream) == 0 then return nil end
  for _, fields in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #fields, 2 do info[fields[i]] = fields[i + 1] end
    if info['name'] == group then return info['last-delivered-id'] end
  end
  return nil
end
local kind = redis.call('TYPE', KEYS[1])
if type(kind) == 'table' then kind = kind['ok'] end
if kind ~= 'stream' then return nil end

local old_last = last_delivered(KEYS[1], ARGV[1])
local pending, listed = {}, 0
if old_last then
  for _, item in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', ARGV[2])) do
    pending[item[1]] = true
    listed = listed + 1
  end
end
local moving, pending_moved, unread_moved = {}, 0, 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local id, fields = entry[1], entry[2]
  local unread = old_last == nil or later(id, old_last)
  if unread or pending[id] then
    for i = 1, #fields, 2 do
      if fields[i] == 'e' then
        table.insert(moving, fields[i + 1])
        if unread then unread_moved = unread_moved + 1 else pending_moved = pending_moved + 1 end
      end
    end
  end
end

local behind = {}
if redis.call('EXISTS', KEYS[3]) == 1 then
  local new_last = last_delivered(KEYS[3], ARGV[1])
  for _, entry in ipairs(redis.call('XRANGE', KEYS[3], new_last or '-', '+')) do
    if new_last == nil or entry[1] ~= new_last then
      table.insert(behind, entry[2])
      redis.call('XDEL', KEYS[3], entry[1])
    end
  end
end
for _, payload in ipairs(moving) do
  redis.call('XADD', KEYS[3], '*', 'e', payload)
end
for _, fields in ipairs(behind) do
  redis.call('XADD', KEYS[3], '*', unpack(fields))
end
if #moving > 0 then
  redis.call('INCRBY', KEYS[4], #moving)
end
redis.call('DEL', KEYS[1], KEYS[2])
return {pending_moved, unread_moved, listed - pending_moved, #behind}
"""

# KEYS[1] the old timers set, KEYS[2] one shard's new timers set; ARGV pairs of an old
# member and its score. A timer moves only if this call removed it from the old set, so
# a timer raced for by two nodes (or fired by a node of the old version) moves once.
MOVE_TIMERS = """
local moved = 0
for i = 1, #ARGV, 2 do
  local member = ARGV[i]
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local cut = string.find(member, '\\n', 1, true)
    redis.call('ZADD', KEYS[2], ARGV[i + 1], string.sub(member, cut + 1))
    moved = moved + 1
  end
end
return moved
"""


@dataclass(frozen=True, slots=True)
class LegacyKeys:
    """The key names of the version before the hash tags."""

    prefix: str

    def stream(self, actor: str, shard: int) -> str:
        return f"{self.prefix}:{actor}:{shard}"

    def counter(self, actor: str, shard: int) -> str:
        return f"{self.stream(actor, shard)}:n"

    def lease(self, actor: str, shard: int) -> str:
        return f"{self.prefix}:lease:{actor}:{shard}"

    def capacity(self, actor: str) -> str:
        return f"{self.prefix}:capacity:{actor}"

    @property
    def timers(self) -> str:
        return f"{self.prefix}:timers"

    def timer_shard(self, member: bytes) -> tuple[str, int] | None:
        """The actor type and shard an old timer was for; None if the member is not one."""
        stream, newline, _ = member.partition(b"\n")
        head = f"{self.prefix}:".encode()
        if not newline or not stream.startswith(head):
            return None
        actor, _, shard = stream[len(head) :].decode(errors="replace").rpartition(":")
        if not actor or not shard.isdigit():
            return None
        return actor, int(shard)


@dataclass(frozen=True, slots=True)
class CarriedOver:
    """What one carry-over moved (all zero: the old keys were not there)."""

    pending: int = 0  # delivered before the upgrade, never acked
    unread: int = 0  # never delivered
    lost: int = 0  # pending, but trimmed from the old stream before the upgrade
    behind: int = 0  # new-stream entries nobody had read, put back after the old ones
    timers: int = 0  # old timers moved to their shards' new sets (of every shard)
    dropped_timers: int = 0  # old members naming no shard (the old version dropped them too)

    @property
    def anything(self) -> bool:
        return any((self.pending, self.unread, self.lost, self.behind, self.timers))


class Carrier:
    """Finds and moves one transport's old keys; the scripts are registered once."""

    def __init__(self, transport: RedisStreamsTransport) -> None:
        self.transport = transport
        self.legacy = LegacyKeys(transport.keys.prefix)
        self._carry: Any = None
        self._move_timers: Any = None
        if not transport.cluster:  # a cluster never held these keys: nothing to register
            self._carry = transport.client.register_script(CARRY_OVER)
            self._move_timers = transport.client.register_script(MOVE_TIMERS)

    async def carry_over(self, actor: str, shard: int) -> CarriedOver | None:
        """Move what the shard's old keys hold into its new ones, once. Call it holding the
        shard's lease, before reading the shard. None: a node of the old version still
        holds the shard's old lease, so its stream waits (ask again later)."""
        transport, legacy = self.transport, self.legacy
        if transport.cluster:
            return CarriedOver()
        client = transport.client
        old_stream = legacy.stream(actor, shard)
        async with client.pipeline(transaction=False) as pipe:
            pipe.exists(old_stream)
            pipe.exists(legacy.lease(actor, shard))
            pipe.exists(legacy.timers)
            stream_left, old_lease, timers_left = await pipe.execute()
        if not (stream_left or timers_left):
            return CarriedOver()
        if stream_left and old_lease:
            log.warning("legacy_shard_still_leased", actor=actor, shard=shard)
            return None
        moved: Any = None
        if stream_left:
            new_stream = transport.keys.stream(actor, shard)
            moved = await self._carry(
                keys=[
                    old_stream,
                    legacy.counter(actor, shard),
                    new_stream,
                    transport.keys.counter(new_stream),
                ],
                args=[actor, PENDING_LIMIT],
            )
            if moved is None:
                log.error("legacy_key_not_a_stream", key=old_stream)
            else:
                await client.delete(legacy.capacity(actor))  # the old mailbox size
        timers, dropped = await self._carry_timers() if timers_left else (0, 0)
        pending, unread, lost, behind = (int(n) for n in moved) if moved else (0, 0, 0, 0)
        carried = CarriedOver(
            pending=pending,
            unread=unread,
            lost=lost,
            behind=behind,
            timers=timers,
            dropped_timers=dropped,
        )
        log.info("legacy_keys_carried_over", actor=actor, shard=shard, **asdict(carried))
        return carried

    async def _carry_timers(self) -> tuple[int, int]:
        """Move every old timer (of every shard: one scan of the set, not one per shard)
        into its shard's new set; returns (moved, dropped)."""
        client = self.transport.client
        keys, legacy = self.transport.keys, self.legacy
        moved = dropped = 0
        while True:
            batch: Any = await client.zrange(legacy.timers, 0, TIMER_BATCH - 1, withscores=True)
            if not batch:
                return moved, dropped
            by_shard: dict[tuple[str, int], list[Any]] = {}
            for member, score in batch:
                target = legacy.timer_shard(member)
                if target is None:
                    dropped += int(await client.zrem(legacy.timers, member))
                    continue
                by_shard.setdefault(target, []).extend((member, int(score)))
            for (actor, shard), args in by_shard.items():
                moved += int(
                    await self._move_timers(
                        keys=[legacy.timers, keys.timers(actor, shard)], args=args
                    )
                )


async def carry_over_quietly(carrier: Carrier, actor: str, shard: int) -> bool:
    """carry_over, its failure logged rather than raised (the shard is served all the same,
    and asked again later); True once nothing is left to carry over."""
    try:
        return await carrier.carry_over(actor, shard) is not None
    except REDIS_DOWN as error:
        log.error("legacy_carry_over_failed", actor=actor, shard=shard, error=str(error))
        return False
