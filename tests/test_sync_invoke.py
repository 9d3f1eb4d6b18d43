"""Synchronous invocation in one process: a Worker and an Invoker on the real Redis.

Metrics are process-global here, so every test uses its own function name.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bus.keys import FunctionKeys
from bus.spec import FunctionSpec, Stack
from bus.sync import Invoker, InvokeResult, InvokeTimeout
from bus.worker import Worker
from tests.handlers_proc import CALLS
from tests.procs import eventually, group_state

H = "tests.handlers_proc."


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def named(url: str, name: str) -> str:
    """The URL with ``client_name``, so CLIENT LIST tells whose connection is whose."""
    return f"{url}?client_name={name}"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def running(url: str, stack: Stack, fn: str) -> AsyncIterator[Worker]:
    worker = Worker(url, stack, fn)
    await worker.start()
    try:
        yield worker
    finally:
        assert await worker.stop(10.0), "in-flight work did not finish"


async def test_thousand_concurrent_invokes_get_their_own_replies_over_few_connections(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, handler=H + "echo_async", timeout_s=10)})
    worker_name, invoker_name = f"wk-{fn}", f"inv-{fn}"
    n = 1000
    payloads = [{"n": i, "tag": os.urandom(6).hex()} for i in range(n)]
    completed = 0
    samples: list[tuple[int, list[dict[str, Any]]]] = []  # (calls in flight, CLIENT LIST)
    own_id = await redis.client_id()

    async def call(inv: Invoker, payload: dict[str, Any]) -> InvokeResult:
        nonlocal completed
        try:
            return await inv.invoke(fn, payload, timeout_s=60)
        finally:
            completed += 1

    async def sample(stop: asyncio.Event) -> None:
        while not stop.is_set():
            in_flight = n - completed
            samples.append((in_flight, await redis.client_list()))
            await asyncio.sleep(0.002)

    async with running(named(redis_url, worker_name), stack, fn):
        async with Invoker(named(redis_url, invoker_name), stack_name) as inv:
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(stop))
            await asyncio.sleep(0)  # the first sample is taken with all calls about to start
            results = await asyncio.gather(*(call(inv, p) for p in payloads))
            stop.set()
            await sampler
            samples.append((0, await redis.client_list()))

    # Every caller got the reply to its own payload.
    assert [r.status for r in results] == ["success"] * n
    for payload, result in zip(payloads, results, strict=True):
        assert result.payload == {"echo": payload, "request_id": result.request_id}
    assert len({r.request_id for r in results}) == n
    assert sorted(CALLS[fn], key=lambda p: p["n"]) == payloads  # each ran exactly once

    # Connections: the Invoker's pools are bounded (8 + 2), and this test's
    # connections together stay far below one per call in flight.
    assert max(f for f, _ in samples) >= n // 2, "no sample was taken during the burst"
    for in_flight, clients in samples:
        mine = [c for c in clients if int(c["id"]) >= own_id]
        invoker = [c for c in mine if c.get("name") == invoker_name]
        assert len(invoker) <= 10, (in_flight, invoker)
        assert len(mine) <= 20, (in_flight, [(c["name"], c["cmd"]) for c in mine])
        # Connections still in their handshake have no name yet.
        assert {c["name"] for c in mine} <= {"", worker_name, invoker_name}


async def test_invoke_past_its_deadline_is_dropped_and_counted_not_run(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, handler=H + "echo_async", timeout_s=10)})
    expired = [{"n": i, "expired": True} for i in range(5)]
    async with Invoker(redis_url, stack_name) as inv:
        # No worker runs: every call times out on the caller's side...
        outcomes = await asyncio.gather(
            *(inv.invoke(fn, p, timeout_s=0.2) for p in expired), return_exceptions=True
        )
        assert all(isinstance(o, InvokeTimeout) for o in outcomes), outcomes
        assert await redis.xlen(FunctionKeys(stack_name, fn).sync) == len(expired)
        # ...and a worker started later drops them instead of running them.
        async with running(redis_url, stack, fn):
            result = await inv.invoke(fn, {"n": 99}, timeout_s=30)
            assert result.status == "success"
            assert result.payload["echo"] == {"n": 99}
            assert CALLS[fn] == [{"n": 99}]
            assert value("lambdabus_expired_invocations_total", function=fn) == len(expired)

            async def settled() -> bool:
                state = await group_state(redis, FunctionKeys(stack_name, fn).sync)
                return state == {"pending": 0, "lag": 0}

            await eventually(settled, "the sync stream acknowledged")
    assert value("lambdabus_invocations_total", function=fn, outcome="success") == 1


async def test_handler_error_returns_lambda_error_payload_and_is_not_retried(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = unique("raise")
    keys = FunctionKeys(stack_name, fn)
    stack = Stack(stack_name, {fn: FunctionSpec(fn, handler=H + "raise_async", timeout_s=10)})
    async with running(redis_url, stack, fn), Invoker(redis_url, stack_name) as inv:
        t0 = time.monotonic()
        result = await inv.invoke(fn, {"n": 7}, timeout_s=30)
        assert time.monotonic() - t0 < 10

        async def settled() -> bool:
            return await group_state(redis, keys.sync) == {"pending": 0, "lag": 0}

        await eventually(settled, "the sync stream acknowledged")
        # Not retried: acknowledged, nothing scheduled, nothing dead-lettered or queued.
        assert await redis.zcard(keys.delayed) == 0
        assert await redis.xlen(keys.dead_letters) == 0
        assert await redis.xlen(keys.stream) == 0
        assert CALLS[fn] == [{"n": 7}]

    assert result.status == "error"
    payload = result.payload
    assert {"errorType", "errorMessage", "stackTrace"} <= set(payload)
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "bad input 7"
    trace = payload["stackTrace"]
    assert isinstance(trace, list) and all(isinstance(line, str) for line in trace)
    assert any("handlers_proc.py" in line and "raise_async" in line for line in trace)
    assert value("lambdabus_invocations_total", function=fn, outcome="error") == 1
    assert value("lambdabus_retries_total", function=fn) == 0
    assert value("lambdabus_dead_letters_total", function=fn, reason="RetriesExhausted") == 0


async def test_handler_error_stack_trace_has_lambdas_shape(redis_url: str, stack_name: str) -> None:
    """Lambda's stackTrace is ``traceback.format_list`` of the function's own frames:
    one '  File "...", line N, in f\n    code\n' string per frame, the runtime's
    frames dropped, no "Traceback (most recent call last):" header and no final
    "ValueError: ..." line (those are errorType/errorMessage)."""
    fn = unique("raise")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, handler=H + "raise_async", timeout_s=10)})
    async with running(redis_url, stack, fn), Invoker(redis_url, stack_name) as inv:
        result = await inv.invoke(fn, {"n": 3}, timeout_s=30)
    assert result.status == "error"
    trace = result.payload["stackTrace"]
    assert trace, "empty stackTrace"
    assert all(line.startswith('  File "') for line in trace), trace
    assert not [line for line in trace if "/bus/" in line], trace  # no lambdabus internals
    assert "handlers_proc.py" in trace[0] and "raise_async" in trace[0], trace
