"""/metrics, /healthz and /readyz of a worker process after a known workload.

``flaky`` (max_retry_attempts=1, 10 ms backoff) runs 5 events that succeed and
2 that always fail: 9 invocations (5 success, 2 x 2 errors), 2 retries and 2
dead letters. Every handler run sleeps 30 ms, a duration that tells seconds
from milliseconds in the histogram.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator

import pytest
from prometheus_client.samples import Sample
from redis.asyncio import Redis

from bus.envelope import Envelope
from bus.keys import FunctionKeys
from bus.publish import Publisher, Target
from bus.spec import Trigger
from tests.handlers_proc import STARTED
from tests.procs import (
    ProcGroup,
    WorkerProc,
    eventually,
    group_state,
    metric,
    publish,
    read_stream,
)

STACK = "pmetrics"
ALLOWED_LABELS = {"function", "outcome", "reason", "source", "adapter", "le"}


@pytest.fixture
def procs(redis_url: str) -> Iterator[ProcGroup]:
    with ProcGroup(redis_url) as group:
        yield group


def bus_samples(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.name.startswith("lambdabus_")]


async def scrape_when(worker: WorkerProc, ready: dict[tuple[str, str], float], what: str,
                      ) -> list[Sample]:  # fmt: skip
    """Poll /metrics until every (metric, function) in ``ready`` has its value."""

    async def check() -> list[Sample] | None:
        samples = await worker.metrics()
        for (name, fn), want in ready.items():
            if metric(samples, name, function=fn) != want:
                return None
        return samples

    return await eventually(check, what, timeout_s=30, interval_s=0.1)


async def test_metrics_count_a_known_workload_exactly(redis: Redis, procs: ProcGroup) -> None:
    fn = "flaky"
    keys = FunctionKeys(STACK, fn)
    ok = [{"id": f"ok-{i}"} for i in range(5)]
    bad = [{"id": f"bad-{i}", "fail": True} for i in range(2)]
    worker = await procs.start("METRICS", fn)
    assert await worker.aget("/healthz") == (200, "ok\n")
    assert (await worker.aget("/readyz"))[0] == 200

    assert await publish(redis, STACK, fn, ok + bad) == 7
    await read_stream(redis, STARTED, 9)  # 5 successes + 2 events x 2 attempts

    async def settled() -> bool:
        state = await group_state(redis, keys.stream)
        return (
            state == {"pending": 0, "lag": 0}
            and await redis.zcard(keys.delayed) == 0
            and await redis.xlen(keys.dead_letters) == 2
        )

    await eventually(settled, "5 acknowledged, 2 dead-lettered")
    # The gauges come from a housekeeping pass (every 5 s) that ran after the
    # dead letters were written: it must see no backlog and nothing pending.
    samples = await scrape_when(
        worker,
        {
            ("lambdabus_dead_letter_events", fn): 2,
            ("lambdabus_backlog_events", fn): 0,
            ("lambdabus_pending_events", fn): 0,
            ("lambdabus_delayed_events", fn): 0,
        },
        "housekeeping gauges after the work",
    )

    def value(name: str, **labels: str) -> float | None:
        return metric(samples, name, function=fn, **labels)

    assert value("lambdabus_invocations_total", outcome="success") == 5
    assert value("lambdabus_invocations_total", outcome="error") == 4
    assert value("lambdabus_invocations_total", outcome="timeout") == 0
    assert value("lambdabus_retries_total") == 2
    assert value("lambdabus_dead_letters_total", reason="RetriesExhausted") == 2
    assert value("lambdabus_dead_letters_total") == 2  # no other reason
    assert value("lambdabus_inflight_invocations") == 0
    assert value("lambdabus_undecodable_entries_total") == 0
    assert value("lambdabus_expired_invocations_total") == 0

    # Duration histogram, in seconds: 9 runs of >= 30 ms each.
    assert value("lambdabus_invocation_duration_seconds_count") == 9
    total = value("lambdabus_invocation_duration_seconds_sum")
    assert total is not None and 9 * 0.03 <= total < 9 * 5
    buckets = {
        float(s.labels["le"]): s.value
        for s in samples
        if s.name == "lambdabus_invocation_duration_seconds_bucket" and s.labels["function"] == fn
    }
    assert buckets[math.inf] == 9
    assert buckets[0.025] == 0  # nothing ran in under 25 ms
    assert buckets[10.0] == 9
    assert {0.001, 0.01, 0.1, 1.0, 60.0} <= set(buckets)
    counts = [buckets[le] for le in sorted(buckets)]
    assert counts == sorted(counts)  # cumulative

    # Labels are bounded: known names only, no event ids anywhere.
    ids = [e["id"] for e in ok + bad]
    for s in bus_samples(samples):
        assert set(s.labels) <= ALLOWED_LABELS, s
        for label_value in s.labels.values():
            assert not any(i in label_value for i in ids), s
        if "function" in s.labels:
            assert s.labels["function"] == fn, s
        if "outcome" in s.labels:
            assert s.labels["outcome"] in {"success", "error", "timeout", "throttled"}, s
        if "reason" in s.labels:
            assert s.labels["reason"] in {"RetriesExhausted", "EventAgeExceeded"}, s

    assert await worker.stop() == 0


async def test_backlog_and_pending_gauges_while_throttled_and_readyz_during_drain(
    redis: Redis, procs: ProcGroup
) -> None:
    """ReservedConcurrentExecutions 0: the worker holds one entry (pending) waiting
    for a lease that never comes; the other entries stay in the backlog."""
    fn = "frozen"
    keys = FunctionKeys(STACK, fn)
    n = 6
    assert await publish(redis, STACK, fn, [{"id": f"f-{i}"} for i in range(n)]) == n
    worker = await procs.start("METRICS", fn, grace_s=3.0)

    samples = await scrape_when(
        worker,
        {("lambdabus_backlog_events", fn): n - 1, ("lambdabus_pending_events", fn): 1},
        "backlog and pending gauges",
    )
    assert metric(samples, "lambdabus_throttled_invocations_total", function=fn) == 1
    # Lambda's Throttles: counted as an outcome, while the handler never ran.
    assert metric(samples, "lambdabus_invocations_total", function=fn, outcome="throttled") == 1
    for outcome in ("success", "error", "timeout"):
        assert metric(samples, "lambdabus_invocations_total", function=fn, outcome=outcome) == 0
    assert await group_state(redis, keys.stream) == {"pending": 1, "lag": n - 1}
    assert await redis.exists(STARTED) == 0  # the handler never ran

    # SIGTERM: not ready while draining; the throttled invocation can't finish,
    # so after the grace period its entry is handed back (left pending for reclaim).
    worker.signal(signal.SIGTERM)

    async def not_ready() -> int | None:
        status, _ = await worker.aget("/readyz")
        return status if status != 200 else None

    assert await eventually(not_ready, "/readyz to stop answering 200", timeout_s=10) == 503
    assert (await worker.aget("/healthz"))[0] == 200  # alive while draining
    assert await worker.wait_exit(20) == 0
    assert await group_state(redis, keys.stream) == {"pending": 1, "lag": n - 1}
    assert await redis.xlen(keys.dead_letters) == 0


async def test_backlog_gauge_counts_ordered_partition_streams(
    redis: Redis, procs: ProcGroup
) -> None:
    """An ordered trigger's records wait in per-partition streams, not the function's
    stream: the backlog gauge (what autoscalers read) must count them too."""
    fn, trigger = "frozen_ordered", Trigger("Stream", ordered=True, shape="records")
    now = time.time()
    envs = [
        Envelope(f"o-{i}", "test", "Test", "Stream", {"i": i}, now, partition=f"key-{i % 3}",
                 first_seen=now)
        for i in range(7)
    ]  # fmt: skip
    assert await Publisher(redis, STACK).publish(envs, [Target(fn, trigger)]) == 7
    worker = await procs.start("METRICS", fn, grace_s=1.0)
    await scrape_when(worker, {("lambdabus_backlog_events", fn): 7}, "ordered backlog gauge")
    worker.signal(signal.SIGTERM)
    assert await worker.wait_exit(20) == 0
