"""Lua scripts the Redis Streams transport runs atomically on the server.

Every script touches the keys of one shard only, which share a hash tag: on a Redis
Cluster they live in one slot, where a script may run.
"""

from __future__ import annotations

# KEYS[1] stream, KEYS[2] its outstanding counter, KEYS[3] the shard's mailbox size as
# its hosting nodes published it; ARGV[1] the cap to use when none is published (0: none;
# -1: none whatever is published, for the sends a closing node already accepted),
# ARGV[2] MAXLEN, ARGV[3..] payloads in order. Adds as many as fit under the cap, in order,
# and returns how many: the caller keeps the rest, so a refused message never overtakes an
# accepted one.
SEND = """
local cap = tonumber(ARGV[1])
if cap >= 0 then
  cap = tonumber(redis.call('GET', KEYS[3]) or ARGV[1])
end
local n = #ARGV - 2
local room = n
if cap > 0 then
  local outstanding = tonumber(redis.call('GET', KEYS[2]) or '0')
  room = math.min(n, math.max(cap - outstanding, 0))
end
for i = 1, room do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[i + 2])
end
if room > 0 then
  redis.call('INCRBY', KEYS[2], room)
end
return room
"""

# KEYS[1] stream, KEYS[2] its outstanding counter; ARGV[1] group, ARGV[2..] entry ids.
# Only entries this call really acknowledged lower the counter, so a repeated ack is harmless.
ACK = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
if acked > 0 then
  if redis.call('DECRBY', KEYS[2], acked) < 0 then
    redis.call('SET', KEYS[2], 0)
  end
end
return acked
"""

# KEYS[1] one shard's timers sorted set, KEYS[2] the shard's stream, KEYS[3] its outstanding
# counter (one hash tag: one slot, so this runs on a Redis Cluster too); ARGV[1] now (ms),
# ARGV[2] how many at most, ARGV[3] MAXLEN. Members are the envelopes. Moving a due timer
# into its stream and removing it happen in one script, so a timer fires exactly once.
FIRE_TIMERS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, payload in ipairs(due) do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', payload)
  redis.call('ZREM', KEYS[1], payload)
end
if #due > 0 then
  redis.call('INCRBY', KEYS[3], #due)
end
return #due
"""

# KEYS lease keys (one, on a Redis Cluster: each shard has its own slot); ARGV[1] node id,
# ARGV[2] ttl (ms). 1 for each lease still ours (renewed).
RENEW = """
local renewed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    renewed[i] = 1
  else
    renewed[i] = 0
  end
end
return renewed
"""

# KEYS lease keys; ARGV[1] node id. Deletes only the leases this node holds.
RELEASE = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""
