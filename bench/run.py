"""``make bench``: lambdabus throughput and latency against the bare-Redis ceiling.

Runs against one private redis-server:
  (a) the bare redis-py loop (bench/bare.py) — the ceiling;
  (b) end to end, idempotent publish included, one worker process, no-op
      ``async def`` and plain ``def`` handlers;
  (c) synchronous invokes: peak rate, then p50/p99 latency at half of it.
Ends with one JSON line. Invocation log lines are off (LAMBDABUS_INVOCATION_LOGS=0):
this measures the bus, not the terminal.

    python -m bench.run [--events N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.bare import run_bare
from bus.embedded import EmbeddedRedis
from bus.envelope import Envelope
from bus.keys import GROUP, FunctionKeys
from bus.lifecycle import READY_LINE
from bus.publish import Publisher, Target
from bus.redis_conn import connect
from bus.spec import DIRECT
from bus.sync import Invoker

ROOT = Path(__file__).resolve().parents[1]
STACK = "bench"


def start_worker(url: str, function: str) -> subprocess.Popen[str]:
    env = dict(os.environ, LAMBDABUS_INVOCATION_LOGS="0", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "bus.cli", "--redis-url", url, "--stack", "bench.stack:STACK",
           "worker", "--function", function, "--admin-port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == READY_LINE:
            break
        if re.search(r"Error|Traceback", line):
            raise RuntimeError(f"worker failed: {line}")
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _drained(redis: Any, stream: str, n: int) -> None:
    while True:
        groups = await redis.xinfo_groups(stream)
        g = next(g for g in groups if g["name"] in (GROUP, GROUP.encode()))
        if int(g.get("entries-read") or 0) >= n and int(g["pending"]) == 0:
            return
        await asyncio.sleep(0.005)


async def end_to_end(url: str, function: str, n: int) -> dict[str, float]:
    """Publish n events (idempotent publish) while a worker process drains them."""
    proc = start_worker(url, function)
    redis = connect(url)
    try:
        pub = Publisher(redis, STACK)
        target = [Target(function, DIRECT)]
        now = time.time()
        envs = [Envelope(f"e{i}", "bench", "noop", DIRECT.name, {"i": i}, now, first_seen=now)
                for i in range(n)]  # fmt: skip
        t0 = time.perf_counter()
        for start in range(0, n, 2000):
            await pub.publish(envs[start : start + 2000], target)
        t_pub = time.perf_counter() - t0
        await _drained(redis, FunctionKeys(STACK, function).stream, n)
        elapsed = time.perf_counter() - t0
    finally:
        await redis.aclose()
        stop_worker(proc)
    return {"eps": n / elapsed, "publish_eps": n / t_pub}


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def sync_invokes(url: str, n: int, seconds: float = 3.0) -> dict[str, float]:
    """Peak synchronous invoke rate (200 in flight), then latency at half that rate."""
    proc = start_worker(url, "noop_async")
    try:
        async with Invoker(url, STACK) as inv:
            sem = asyncio.Semaphore(200)

            async def one(i: int) -> float:
                async with sem:
                    t = time.perf_counter()
                    r = await inv.invoke("noop_async", {"i": i}, timeout_s=30)
                    assert r.ok and r.payload == {"i": i}, r
                    return time.perf_counter() - t

            await asyncio.gather(*(one(i) for i in range(500)))  # warm up
            t0 = time.perf_counter()
            burst = await asyncio.gather(*(one(i) for i in range(n)))
            peak = n / (time.perf_counter() - t0)
            rate = peak / 2
            lat: list[float] = []
            tasks = []
            start = time.perf_counter()
            count = int(rate * seconds)
            for i in range(count):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            lat = list(await asyncio.gather(*tasks))
    finally:
        stop_worker(proc)
    return {
        "invoke_peak_rps": peak,
        "invoke_rate_rps": rate,
        "invoke_p50_ms": _pct(lat, 0.50),
        "invoke_p99_ms": _pct(lat, 0.99),
        "invoke_burst_p50_ms": statistics.median(burst) * 1000,
    }


async def dedupe_memory(url: str, n: int = 50_000) -> float:
    """Bytes of Redis memory per remembered event id (36-char uuids)."""
    redis = connect(url)
    try:
        pub = Publisher(redis, STACK)
        target = [Target("dedupe_probe", DIRECT)]
        now = time.time()
        keys = FunctionKeys(STACK, "dedupe_probe")
        for _start in range(0, n, 2000):
            envs = [Envelope(str(uuid.uuid4()), "bench", "x", DIRECT.name, None, now)
                    for _ in range(2000)]  # fmt: skip
            await pub.publish(envs, target)
        used = await redis.memory_usage(keys.seen, samples=0)
        await redis.delete(keys.seen, keys.stream)
        return float(used or 0) / n
    finally:
        await redis.aclose()


async def main(n: int) -> dict[str, Any]:
    with EmbeddedRedis() as server:
        url = server.url
        bare = await run_bare(url, n)
        print(f"(a) bare redis-py loop        {bare['bare_eps']:>9,.0f} events/s", flush=True)
        a = await end_to_end(url, "noop_async", n)
        print(f"(b) async def no-op           {a['eps']:>9,.0f} events/s "
              f"({a['eps'] / bare['bare_eps']:.0%} of bare; publish alone "
              f"{a['publish_eps']:,.0f}/s)", flush=True)  # fmt: skip
        s = await end_to_end(url, "noop_sync", n // 2)
        print(f"    plain def no-op           {s['eps']:>9,.0f} events/s "
              f"({s['eps'] / bare['bare_eps']:.0%} of bare)", flush=True)  # fmt: skip
        inv = await sync_invokes(url, min(n // 10, 10_000))
        print(f"(c) sync invoke peak          {inv['invoke_peak_rps']:>9,.0f} calls/s; at "
              f"{inv['invoke_rate_rps']:,.0f}/s p50 {inv['invoke_p50_ms']:.2f} ms, "
              f"p99 {inv['invoke_p99_ms']:.2f} ms", flush=True)  # fmt: skip
        per_id = await dedupe_memory(url)
        print(f"    dedupe memory             {per_id:>9.0f} bytes per remembered id")
    return {
        "events": n,
        "bare_eps": round(bare["bare_eps"]),
        "async_eps": round(a["eps"]),
        "sync_handler_eps": round(s["eps"]),
        "invoke_peak_rps": round(inv["invoke_peak_rps"]),
        "invoke_p50_ms": round(inv["invoke_p50_ms"], 2),
        "invoke_p99_ms": round(inv["invoke_p99_ms"], 2),
        "async_ratio": round(a["eps"] / bare["bare_eps"], 3),
        "dedupe_bytes_per_id": round(per_id, 1),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    result = asyncio.run(main(ap.parse_args().events))
    print(json.dumps(result))
