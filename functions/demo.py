"""``make demo``: a private Redis, one worker process per function, events through
the bus synchronously and asynchronously, then a table of what happened.

    python -m functions.demo
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bus.deadletter import DeadLetters
from bus.embedded import EmbeddedRedis
from bus.envelope import Envelope
from bus.publish import Publisher, Target
from bus.redis_conn import connect
from bus.spec import DIRECT
from bus.sync import Invoker
from functions.demo_stack import STACK

ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str, str]


def start_workers(url: str) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, DEMO_RESULTS_URL=url, PYTHONPATH=str(ROOT))
    env.setdefault("LAMBDABUS_INVOCATION_LOGS", "0")
    procs = []
    for name in STACK.functions:
        cmd = [sys.executable, "-m", "bus.cli", "--redis-url", url, "--stack",
               "functions.demo_stack:STACK", "worker", "--function", name,
               "--admin-port", "0"]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL))
    return procs


async def wait_results(redis: Any, expected: int, timeout_s: float) -> list[dict[str, str]]:
    """Read the handlers' reports until ``expected`` arrived (XREAD BLOCK, no polling)."""
    rows: list[dict[str, str]] = []
    last = "0-0"
    deadline = time.monotonic() + timeout_s
    while len(rows) < expected and time.monotonic() < deadline:
        reply = await redis.xread({"demo:results": last}, block=500)
        for _, entries in reply.items() if isinstance(reply, dict) else reply or []:
            for entry_id, fields in entries:
                last = entry_id
                rows.append({k.decode(): v.decode() for k, v in fields.items()})
    return rows


async def run(url: str) -> list[Row]:
    redis = connect(url)
    rows: list[Row] = []
    published: dict[str, float] = {}
    async with Invoker(url, STACK.name) as invoker:
        for name in ("Ada", "Grace"):  # synchronous: the caller waits for the reply
            t = time.perf_counter()
            r = await invoker.invoke("greet", {"name": name}, timeout_s=20)
            ms = (time.perf_counter() - t) * 1000
            rows.append(("greet", f"invoke {name}", f"{r.status}: {r.payload['message']}",
                         f"{ms:.1f} ms"))  # fmt: skip
    publisher = Publisher(redis, STACK.name)
    now = time.time()

    def envelope(record: Any, ident: str) -> Envelope:
        published[ident] = time.time()
        return Envelope(ident, "demo", "Demo", DIRECT.name, record, now, first_seen=now)

    queue = STACK.function("word_count").triggers["Queue"]
    records = [envelope({"messageId": f"m{i}", "body": "the quick brown fox " * i}, f"m{i}")
               for i in range(1, 6)]  # fmt: skip
    await publisher.publish(records, [Target("word_count", queue)])
    await publisher.publish(records[:1], [Target("word_count", queue)])  # a duplicate: dropped
    await publisher.publish([envelope({"id": "job-7"}, "job-7")], [Target("flaky", DIRECT)])
    await publisher.publish([envelope({"id": "order-9"}, "order-9")],
                            [Target("always_fails", DIRECT)])  # fmt: skip
    for rep in await wait_results(redis, expected=5 + 1 + 1, timeout_s=60):
        latency = (float(rep["done"]) - published.get(rep["key"], float(rep["done"]))) * 1000
        rows.append((rep["function"], rep["key"], rep["outcome"], f"{latency:.1f} ms"))
    for letter in await DeadLetters(redis, STACK.name).list("always_fails"):
        env = letter.envelope
        rows.append(("always_fails", env.id if env else "?",
                     f"dead letter after {letter.attempts} attempts: {letter.error_type}: "
                     f"{letter.error_message}", ""))  # fmt: skip
    await redis.aclose()
    return rows


def main() -> int:
    with EmbeddedRedis() as server:
        print(f"redis-server (private): {server.url}")
        procs = start_workers(server.url)
        print(f"workers: {len(procs)} processes, one per function")
        try:
            rows = asyncio.run(run(server.url))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            codes = [p.wait(timeout=30) for p in procs]
    widths = [max(len(r[i]) for r in [("function", "event", "outcome", "latency"), *rows])
              for i in range(4)]  # fmt: skip
    for row in [("function", "event", "outcome", "latency"), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"workers stopped on SIGTERM with exit codes {codes}")
    ok = len(rows) >= 10 and all(c == 0 for c in codes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
