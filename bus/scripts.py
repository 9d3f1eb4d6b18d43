"""Every multi-step Redis operation, as one Lua script each.

A script touches only keys of one function (one hash tag), so it is atomic on
a single Redis and on Redis Cluster alike. Times come from the server's clock
(``TIME``; scripts are effect-replicated since Redis 5), so workers with skewed
clocks still agree on windows and due times.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_NOW = """
local _t = redis.call('TIME')
local now = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
"""

PUBLISH = (
    _NOW
    + """
-- KEYS: stream, seen.  ARGV: (event id, dedupe window ms, payload)*
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local added = 0
for i = 1, #ARGV, 3 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 1]), ARGV[i])
    redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 2])
    added = added + 1
  end
end
return added
"""
)

PUBLISH_ORDERED = (
    _NOW
    + """
-- KEYS: seen, partitions, partition stream per event.
-- ARGV: (event id, dedupe window ms, payload, partition hash)*
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local added = 0
local k = 3
for i = 1, #ARGV, 4 do
  if not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[i + 1]), ARGV[i])
    redis.call('XADD', KEYS[k], '*', 'd', ARGV[i + 2])
    redis.call('ZADD', KEYS[2], 'NX', now, ARGV[i + 3])
    added = added + 1
  end
  k = k + 1
end
return added
"""
)

RETRY_LATER = (
    _NOW
    + """
-- KEYS: stream, delayed.  ARGV: group, (entry id, delay ms, payload)*
-- Only an entry this call acked is rescheduled: a stale worker whose entry was
-- reclaimed and settled elsewhere must not fork a second copy.
for i = 2, #ARGV, 3 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i + 1]), ARGV[i + 2])
  end
end
return 1
"""
)

MOVE_DUE = (
    _NOW
    + """
-- KEYS: delayed, stream.  ARGV: limit.  Returns {moved, ms until the next due entry or -1}.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'd', m)
end
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = -1
if #nxt > 0 then wait = math.max(0, tonumber(nxt[2]) - now) end
return {#due, wait}
"""
)

DEAD_LETTER = (
    _NOW
    + """
-- KEYS: source stream, dead-letter stream.
-- ARGV: group ('' = source is a partition stream: delete instead of ack),
--       (entry id, payload, error type, message, traceback, reason, attempts)*
for i = 2, #ARGV, 7 do
  local owned = 1
  if ARGV[i] ~= '' then
    if ARGV[1] == '' then
      owned = redis.call('XDEL', KEYS[1], ARGV[i])
    else
      owned = redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    end
  end
  if owned == 1 then  -- settled elsewhere already: don't dead-letter it twice
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[i + 1], 'error_type', ARGV[i + 2],
      'error_message', ARGV[i + 3], 'traceback', ARGV[i + 4], 'reason', ARGV[i + 5],
      'attempts', ARGV[i + 6], 'failed_at_ms', now)
  end
end
return 1
"""
)

REDRIVE = """
-- KEYS: dead-letter stream, target stream.  ARGV: (dead-letter id, payload)*
-- Deleting first makes concurrent redrives of one letter run it once.
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'd', ARGV[i + 1])
    n = n + 1
  end
end
return n
"""

ACQUIRE_LEASES = (
    _NOW
    + """
-- KEYS: leases zset.  ARGV: limit, ttl ms, candidate lease ids...  Returns how many granted.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local granted = 0
for i = 3, #ARGV do
  if granted >= free then break end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[i])
  granted = granted + 1
end
return granted
"""
)

RENEW_LEASES = (
    _NOW
    + """
-- KEYS: leases zset.  ARGV: ttl ms, lease ids...  Only renews leases still held.
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
return 1
"""
)

RENEW_LOCK = """
-- KEYS: lock.  ARGV: owner, ttl ms.  1 if still ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

HOLD_LOCK = """
-- KEYS: lock.  ARGV: owner, ttl ms.  1 if ours (taken, renewed, or taken back: a lock
-- that lapsed while its owner was slow and that no one else took is simply its again).
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

RELEASE_LOCK = """
-- KEYS: lock.  ARGV: owner.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

COMMIT_PARTITION = """
-- KEYS: partition stream, lock, partitions index, partition state.
-- ARGV: owner, partition hash, entry ids...
-- Returns -1 if the lease was lost, else the entries left in the partition.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if #ARGV > 2 then redis.call('XDEL', KEYS[1], unpack(ARGV, 3)) end
redis.call('HDEL', KEYS[4], ARGV[2])
local left = redis.call('XLEN', KEYS[1])
if left == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return left
"""


class Scripts:
    """The registered scripts of one client (EVALSHA, reloaded on NOSCRIPT by redis-py)."""

    __slots__ = (
        "acquire_leases",
        "commit_partition",
        "dead_letter",
        "move_due",
        "publish",
        "publish_ordered",
        "redrive",
        "release_lock",
        "renew_leases",
        "renew_lock",
        "retry_later",
    )

    def __init__(self, redis: Redis) -> None:
        self.publish: AsyncScript = redis.register_script(PUBLISH)
        self.publish_ordered: AsyncScript = redis.register_script(PUBLISH_ORDERED)
        self.retry_later: AsyncScript = redis.register_script(RETRY_LATER)
        self.move_due: AsyncScript = redis.register_script(MOVE_DUE)
        self.dead_letter: AsyncScript = redis.register_script(DEAD_LETTER)
        self.redrive: AsyncScript = redis.register_script(REDRIVE)
        self.acquire_leases: AsyncScript = redis.register_script(ACQUIRE_LEASES)
        self.renew_leases: AsyncScript = redis.register_script(RENEW_LEASES)
        self.renew_lock: AsyncScript = redis.register_script(RENEW_LOCK)
        self.release_lock: AsyncScript = redis.register_script(RELEASE_LOCK)
        self.commit_partition: AsyncScript = redis.register_script(COMMIT_PARTITION)


def as_int(value: Any) -> int:
    return int(value) if value is not None else 0
