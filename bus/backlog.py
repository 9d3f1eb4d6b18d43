"""How much work waits for a function: what the backlog gauge and adapters' backpressure
both read, so autoscalers and adapters agree."""

from __future__ import annotations

from redis.asyncio import Redis

from .keys import FunctionKeys

PARTITION_SAMPLE = 1000
"""Partition streams whose length the backlog gauge reads each housekeeping round."""


async def ordered_backlog(redis: Redis, keys: FunctionKeys, sample: int = PARTITION_SAMPLE) -> int:
    """Records not yet committed in a function's partition streams (in flight included:
    a partition's records leave its stream only when committed). Exact up to ``sample``
    partitions, scaled from that sample beyond. The backlog gauge and the adapters'
    backpressure both read this, so they agree."""
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(keys.partitions)
    pipe.zrange(keys.partitions, 0, max(1, sample) - 1)
    count, members = await pipe.execute()
    if not members:
        return 0
    pipe = redis.pipeline(transaction=False)
    for member in members:
        name = member.decode() if isinstance(member, bytes) else str(member)
        pipe.xlen(keys.partition_stream(name))
    total = sum(await pipe.execute())
    return int(total if count <= len(members) else round(total * count / len(members)))
