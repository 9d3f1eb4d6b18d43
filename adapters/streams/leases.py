"""Per-shard leases and checkpoints in Redis, for any number of adapter replicas.

- **Lease**: one key per shard holding the owner's id with an expiry (``SET NX
  PX``), renewed every third of its TTL while the owner reads. A replica that
  dies stops renewing; after the TTL another replica takes the shard and resumes
  from its checkpoint. An owner that fails to renew stops reading that shard.
- **Checkpoint**: one hash per mapping, shard id -> the sequence number of the
  last record *published* (or ``SHARD_END``). Written by a script that checks
  the lease first, so a replica that lost its lease (paused, partitioned) can't
  move a checkpoint the new owner relies on; it only ever moves forward.
- **Start**: the shards listed at the mapping's first start and the Redis time of it,
  fixed once; StartingPosition LATEST is that time (see :mod:`.reader`).
- **Readers**: replicas heartbeat into a sorted set, so each takes only its fair
  share of shards and new replicas get some (no rebalancing of held leases:
  shards change hands when they close, or when their owner stops).

Times are Redis's (``TIME``, PX), so replicas with skewed clocks agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis

from bus.keys import StreamSourceKeys
from bus.scripts import HOLD_LOCK, RELEASE_LOCK

from .shards import SHARD_END

_LATER = """
local function later(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
"""

CHECKPOINT = (
    _LATER
    + """
-- KEYS: lease, checkpoints.  ARGV: owner, shard id, sequence number or SHARD_END.
-- 1 = written (or already there), 0 = the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if cur == 'SHARD_END' then return 1 end
if ARGV[3] == 'SHARD_END' or not cur or later(ARGV[3], cur) then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return 1
"""
)

HEARTBEAT = """
-- KEYS: readers.  ARGV: owner, ttl ms.  Returns the live readers, this one included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
return redis.call('ZCARD', KEYS[1])
"""

INITIAL = """
-- KEYS: initial set, started.  ARGV: shard ids.  The first caller's shards win, and the
-- Redis time of that first call is the mapping's start.  Returns {start, members}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SADD', KEYS[1], '')
  for i = 1, #ARGV, INITIAL_CHUNK do  -- unpack() of 8,000+ values fails: add in chunks
    redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + INITIAL_CHUNK - 1, #ARGV)))
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then  -- also for a mapping started before this key
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
end
return {redis.call('GET', KEYS[2]), redis.call('SMEMBERS', KEYS[1])}
""".replace("INITIAL_CHUNK", "1000")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ShardLeases:
    """One replica's view of one mapping's leases and checkpoints."""

    def __init__(self, redis: Redis, keys: StreamSourceKeys, owner: str, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError("lease TTL must be > 0")
        self.redis = redis
        self.keys = keys
        self.owner = owner
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._checkpoint = redis.register_script(CHECKPOINT)
        self._heartbeat = redis.register_script(HEARTBEAT)
        self._initial = redis.register_script(INITIAL)
        self._renew = redis.register_script(HOLD_LOCK)
        self._release = redis.register_script(RELEASE_LOCK)

    async def acquire(self, shard_id: str) -> bool:
        return bool(await self.redis.set(self.keys.lease(shard_id), self.owner, nx=True,
                                         px=self.ttl_ms))  # fmt: skip

    async def renew(self, shard_ids: Iterable[str]) -> set[str]:
        """Renew each lease still ours (or free); returns the shards another owner holds."""
        ids = list(shard_ids)
        if not ids:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for shard_id in ids:
            await self._renew(keys=[self.keys.lease(shard_id)], args=[self.owner, self.ttl_ms],
                              client=pipe)  # fmt: skip
        results = await pipe.execute()
        return {s for s, ok in zip(ids, results, strict=True) if not ok}

    async def release(self, shard_id: str) -> None:
        await self._release(keys=[self.keys.lease(shard_id)], args=[self.owner])

    async def holder(self, shard_id: str) -> str | None:
        value = await self.redis.get(self.keys.lease(shard_id))
        return _text(value) if value is not None else None

    async def checkpoint(self, shard_id: str, sequence: str) -> bool:
        """Record that everything up to ``sequence`` is published; False if not our lease."""
        done = await self._checkpoint(
            keys=[self.keys.lease(shard_id), self.keys.checkpoints],
            args=[self.owner, shard_id, sequence],
        )
        return bool(done)

    async def checkpoints(self) -> dict[str, str]:
        raw: Any = await self.redis.hgetall(self.keys.checkpoints)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def heartbeat(self) -> int:
        """Announce this replica; returns how many replicas read the mapping now."""
        return int(await self._heartbeat(keys=[self.keys.readers], args=[self.owner, self.ttl_ms]))

    async def leave(self) -> None:
        await self.redis.zrem(self.keys.readers, self.owner)

    async def initial(self, shard_ids: Iterable[str]) -> tuple[float, set[str]]:
        """When the mapping first started (Redis time, epoch seconds) and the shards listed
        then (StartingPosition applies to them only); the first replica ever to ask fixes
        both, so they survive restarts and takeovers."""
        started, members = await self._initial(
            keys=[self.keys.initial, self.keys.started], args=list(shard_ids)
        )
        return float(_text(started)), {_text(m) for m in members} - {""}

    async def initial_shards(self, shard_ids: Iterable[str]) -> set[str]:
        return (await self.initial(shard_ids))[1]


def finished(checkpoint: str | None) -> bool:
    return checkpoint == SHARD_END
