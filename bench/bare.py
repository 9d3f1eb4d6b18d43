"""The ceiling: how fast one bare redis-py asyncio loop moves events through a stream.

lambdabus's own throughput numbers are read against this: the same work
(pipelined XADD, then XREADGROUP + one batched XACK per read) with nothing of
lambdabus in between, in one process, on one connection.

    python -m bench.bare [N]    # starts a private redis-server, prints one JSON line
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from redis.asyncio import Redis

from bus.embedded import EmbeddedRedis

BATCH = 500
GROUP = "bench"
CONSUMER = "bare-1"
PAYLOAD = b"x" * 100


def _entry_ids(reply: Any) -> list[bytes]:
    """Entry ids from an XREADGROUP reply, RESP2 (list of pairs) or RESP3 (dict)."""
    streams = reply.items() if isinstance(reply, dict) else (reply or [])
    ids: list[bytes] = []
    for _name, entries in streams:
        # RESP3 may nest one more list level per stream.
        if (
            entries
            and isinstance(entries[0], list)
            and entries[0]
            and isinstance(entries[0][0], list | tuple)
        ):
            entries = entries[0]
        ids.extend(entry_id for entry_id, _fields in entries)
    return ids


async def _publish(r: Redis, stream: str, n: int) -> None:
    """XADD n entries, BATCH per pipeline, one pipeline in flight at a time."""
    sent = 0
    while sent < n:
        size = min(BATCH, n - sent)
        async with r.pipeline(transaction=False) as pipe:
            for _ in range(size):
                pipe.xadd(stream, {b"d": PAYLOAD})
            await pipe.execute()
        sent += size


async def _consume(r: Redis, stream: str, n: int) -> None:
    """XREADGROUP COUNT BATCH and XACK each read's ids at once, until n are acked."""
    acked = 0
    while acked < n:
        reply = await r.xreadgroup(GROUP, CONSUMER, {stream: ">"}, count=BATCH)
        ids = _entry_ids(reply)
        if not ids:
            raise RuntimeError(f"stream {stream} ran dry after {acked} of {n} entries")
        acked += await r.xack(stream, GROUP, *ids)


async def run_bare(
    url: str, n: int = 200_000, stream: str = "bench:{bare}:stream"
) -> dict[str, float]:
    """Publish then consume n events; return events/s for each phase and overall."""
    # socket_timeout=None: the default timeout's per-read bookkeeping costs ~40% on XADD.
    r = Redis.from_url(url, socket_timeout=None)
    try:
        await r.delete(stream)
        t_start = time.perf_counter()
        await _publish(r, stream, n)
        t_published = time.perf_counter()
        await r.xgroup_create(stream, GROUP, id="0")
        await _consume(r, stream, n)
        t_end = time.perf_counter()
        return {
            "bare_eps": n / (t_end - t_start),
            "bare_publish_eps": n / (t_published - t_start),
            "bare_consume_eps": n / (t_end - t_published),
        }
    finally:
        await r.delete(stream)
        await r.aclose()


def main(argv: list[str]) -> None:
    """Run against a private redis-server so the number never depends on a shared one."""
    n = int(argv[1]) if len(argv) > 1 else 200_000
    with EmbeddedRedis() as server:
        result = asyncio.run(run_bare(server.url, n))
    print(json.dumps({"n": n, **{k: round(v, 1) for k, v in result.items()}}))


if __name__ == "__main__":
    main(sys.argv)
