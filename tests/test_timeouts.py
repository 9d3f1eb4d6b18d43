"""Timeout: async handlers are cancelled, threads abandoned, isolated processes killed;
each counts as outcome "timeout" and is retried."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bus.deadletter import DeadLetters
from bus.publish import Publisher, Target
from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger
from tests.handlers_bus import env, probe, running, wait_until

QUEUE = Trigger("queue")
RETRY = RetryPolicy(max_retry_attempts=2, backoff_base_s=0.05, backoff_cap_s=0.1)
ROOT = str(Path(__file__).resolve().parents[1])


def outcomes(fn: str) -> dict[str, float]:
    return {
        o: REGISTRY.get_sample_value("lambdabus_invocations_total", {"function": fn, "outcome": o})
        or 0.0
        for o in ("success", "error", "timeout")
    }


def stack_of(stack_name: str, fn: str, handler: str, **kw: Any) -> Stack:
    spec = FunctionSpec(fn, handler, retry=RETRY, triggers={"queue": QUEUE}, **kw)
    return Stack(stack_name, {fn: spec})


async def test_async_handler_past_timeout_is_cancelled_and_retried(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"slow_async_{stack_name}"
    p = probe(fn)
    stack = stack_of(stack_name, fn, "tests.handlers_bus.slow_async", timeout_s=0.3)
    async with running(redis_url, stack, fn):
        await Publisher(redis, stack_name).publish([env("t1", {"k": 1})], [Target(fn, QUEUE)])
        await p.wait(lambda calls: len(calls) == 2 and calls[1].ok is True)
    first = p.calls[0]
    assert first.end is None  # cancelled: never got past its sleep
    assert 0.3 <= p.calls[1].start - first.start < 0.3 + 1.0
    assert outcomes(fn) == {"success": 1, "error": 0, "timeout": 1}
    assert await DeadLetters(redis, stack_name).count(fn) == 0


async def test_thread_handler_past_timeout_is_abandoned_and_retried(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"slow_thread_{stack_name}"
    p = probe(fn)
    stack = stack_of(stack_name, fn, "tests.handlers_bus.slow_thread", timeout_s=0.3)
    abandoned = {"function": fn}
    try:
        async with running(redis_url, stack, fn):
            await Publisher(redis, stack_name).publish([env("t2", {"k": 2})], [Target(fn, QUEUE)])
            await p.wait(lambda calls: len(calls) == 2 and calls[1].ok is True)
            # The retry ran while the abandoned thread was still blocked.
            assert p.calls[0].end is None
            assert (
                REGISTRY.get_sample_value("lambdabus_abandoned_invocations_total", abandoned) == 1
            )
            p.thread_gate.set()
            await p.wait(lambda calls: calls[0].end is not None)
    finally:
        p.thread_gate.set()
    assert outcomes(fn) == {"success": 1, "error": 0, "timeout": 1}
    assert await DeadLetters(redis, stack_name).count(fn) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child that its parent has not reaped yet still "exists" as a zombie.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_isolated_runaway_handler_is_killed(
    redis_url: str, redis: Redis, stack_name: str, tmp_path: Path
) -> None:
    fn = f"runaway_{stack_name}"
    # The Timeout covers the child's cold start (spawn + imports) too, so leave room for it.
    stack = stack_of(
        stack_name, fn, "tests.handlers_bus.runaway",
        timeout_s=2.0, isolation="process", code_path=ROOT, threads=1,
    )  # fmt: skip
    pidfile = tmp_path / "pid"
    second = tmp_path / "pid.2"

    def check(cond: Callable[[], object]) -> Callable[[], Awaitable[bool]]:
        async def poll() -> bool:
            return bool(cond())

        return poll

    async with running(redis_url, stack, fn):
        await Publisher(redis, stack_name).publish(
            [env("t3", {"pidfile": str(pidfile)})], [Target(fn, QUEUE)]
        )
        await wait_until(check(pidfile.exists), what="child wrote its pid")
        pid = int(pidfile.read_text())
        assert pid != os.getpid()
        assert _alive(pid)
        await wait_until(check(lambda: outcomes(fn)["timeout"] >= 1), what="timeout outcome")
        # The kill is asynchronous to the outcome: poll, bounded.
        await wait_until(check(lambda: not _alive(pid)), within=5, what=f"child {pid} killed")
        # The retry runs in a fresh child and succeeds.
        await wait_until(check(second.exists), what="retry in a new child")
        await wait_until(check(lambda: outcomes(fn)["success"] >= 1), what="success outcome")
        assert int(second.read_text()) != pid
    assert outcomes(fn) == {"success": 1, "error": 0, "timeout": 1}


# Lambda runs Init (start-up and handler import) under its own limit, outside the
# Timeout: a function whose init takes longer than its Timeout must still succeed.
async def test_isolated_cold_start_does_not_count_against_timeout(
    redis_url: str, redis: Redis, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fn = f"cold_{stack_name}"
    monkeypatch.setenv("LAMBDABUS_TEST_INIT_DELAY_S", "1.0")  # read by spawned children
    retry = RetryPolicy(max_retry_attempts=1, backoff_base_s=0.05, backoff_cap_s=0.1)
    spec = FunctionSpec(
        fn, "tests.handlers_bus.pong", timeout_s=0.5, isolation="process",
        code_path=ROOT, threads=1, retry=retry, triggers={"queue": QUEUE},
    )  # fmt: skip
    dl = DeadLetters(redis, stack_name)
    async with running(redis_url, Stack(stack_name, {fn: spec}), fn):
        await Publisher(redis, stack_name).publish([env("c1", {})], [Target(fn, QUEUE)])

        async def settled() -> bool:
            return outcomes(fn)["success"] >= 1 or await dl.count(fn) > 0

        await wait_until(settled, within=15, what="success or dead letter")
    assert outcomes(fn)["success"] == 1, outcomes(fn)


# A handler that can't be imported in its isolated child is an error outcome with
# Lambda's Runtime.ImportModuleError, retried and dead-lettered like any other error.
async def test_isolated_handler_import_error_is_an_error_outcome(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"noimport_{stack_name}"
    retry = RetryPolicy(max_retry_attempts=0, backoff_base_s=0.05, backoff_cap_s=0.1)
    spec = FunctionSpec(
        fn, "tests.no_such_handler_module.handler", timeout_s=0.5, isolation="process",
        code_path=ROOT, threads=1, retry=retry, triggers={"queue": QUEUE},
        visibility_timeout_s=1.0,
    )  # fmt: skip
    dl = DeadLetters(redis, stack_name)
    async with running(redis_url, Stack(stack_name, {fn: spec}), fn):
        await Publisher(redis, stack_name).publish([env("i1", {})], [Target(fn, QUEUE)])
        await wait_until(lambda: dl.count(fn), what="dead letter")
    [letter] = await dl.list(fn)
    assert letter.error_type != "Runtime.WorkerLost", letter
    assert "no_such_handler_module" in letter.error_message
    assert outcomes(fn)["error"] == 1
