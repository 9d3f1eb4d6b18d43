"""Asynchronous retries: backoff, MaximumRetryAttempts, dead letters, redrive,
OnFailure destinations, undecodable entries and MaximumEventAgeInSeconds."""

from __future__ import annotations

import time
from typing import Any

import msgpack
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bus.backoff import backoff_bound_s
from bus.deadletter import DeadLetters
from bus.keys import GROUP, FunctionKeys
from bus.publish import Publisher, Target
from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger
from tests.handlers_bus import env, equals, probe, running, wait_until

QUEUE = Trigger("queue")
FAST = RetryPolicy(max_retry_attempts=2, backoff_base_s=0.05, backoff_cap_s=0.2)
SCHEDULING_ALLOWANCE_S = 0.5


def spec(name: str, handler: str = "tests.handlers_bus.flaky", **kw: Any) -> FunctionSpec:
    kw.setdefault("retry", FAST)
    kw.setdefault("triggers", {"queue": QUEUE})
    return FunctionSpec(name, handler, **kw)


async def pending(redis: Redis, stream: str) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


async def test_retried_with_capped_backoff_then_succeeds(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"retry_ok_{stack_name}"
    stack = Stack(stack_name, {fn: spec(fn)})
    p = probe(fn, fail_first=2)
    async with running(redis_url, stack, fn):
        await Publisher(redis, stack_name).publish([env("r1", {"k": 1})], [Target(fn, QUEUE)])
        await p.wait(lambda calls: len(calls) == 3 and calls[2].ok is True)
        await wait_until(
            equals(lambda: pending(redis, FunctionKeys(stack_name, fn).stream), 0), what="acked"
        )
    assert [c.ok for c in p.calls] == [False, False, True]
    assert [c.event for c in p.calls] == [{"k": 1}] * 3
    for retry in (1, 2):
        gap = p.calls[retry].start - p.calls[retry - 1].start
        bound = backoff_bound_s(retry, FAST.backoff_base_s, FAST.backoff_cap_s)
        assert 0 <= gap <= bound + SCHEDULING_ALLOWANCE_S, (retry, gap, bound)
    assert await DeadLetters(redis, stack_name).count(fn) == 0
    assert REGISTRY.get_sample_value("lambdabus_retries_total", {"function": fn}) == 2
    assert (
        REGISTRY.get_sample_value(
            "lambdabus_invocations_total", {"function": fn, "outcome": "error"}
        )
        == 2
    )


async def test_exhausted_retries_dead_letter_then_redrive(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"retry_dead_{stack_name}"
    stack = Stack(stack_name, {fn: spec(fn)})
    p = probe(fn, fail_first=3)  # every attempt of the first delivery fails
    dl = DeadLetters(redis, stack_name)
    async with running(redis_url, stack, fn):
        await Publisher(redis, stack_name).publish([env("d1", {"k": "dead"})], [Target(fn, QUEUE)])
        await wait_until(lambda: dl.count(fn), what="dead letter")
        assert len(p.calls) == 1 + FAST.max_retry_attempts
        assert all(c.ok is False for c in p.calls)
        [letter] = await dl.list(fn)
        assert letter.reason == "RetriesExhausted"
        assert letter.error_type == "FlakyError"
        assert "call 3 fails on purpose" in letter.error_message
        assert "explode_on_purpose" in letter.traceback
        assert letter.attempts == 1 + FAST.max_retry_attempts
        assert letter.envelope is not None and letter.envelope.id == "d1"
        assert letter.envelope.record == {"k": "dead"}
        assert await redis.zcard(FunctionKeys(stack_name, fn).delayed) == 0

        assert await dl.redrive(fn) == (1, 0)
        await p.wait(lambda calls: len(calls) == 4 and calls[3].ok is True)
        assert p.calls[3].event == {"k": "dead"}
        assert await dl.count(fn) == 0
    assert (
        REGISTRY.get_sample_value(
            "lambdabus_dead_letters_total", {"function": fn, "reason": "RetriesExhausted"}
        )
        == 1
    )


async def test_on_failure_destination_gets_lambda_record(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn, dest = f"src_{stack_name}", f"dest_{stack_name}"
    policy = RetryPolicy(max_retry_attempts=1, backoff_base_s=0.05, backoff_cap_s=0.1)
    stack = Stack(
        stack_name,
        {
            fn: spec(fn, retry=policy, on_failure=dest),
            dest: FunctionSpec(dest, "tests.handlers_bus.record"),
        },
    )
    p = probe(fn, fail_first=100)
    pd = probe(dest)
    original = {"order": 42, "items": ["a", "b"]}
    async with running(redis_url, stack, fn, dest):
        await Publisher(redis, stack_name).publish([env("o1", original)], [Target(fn, QUEUE)])
        await pd.wait(lambda calls: len(calls) == 1)
        assert len(p.calls) == 2
    record = pd.calls[0].event
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == original
    assert record["responsePayload"]["errorType"] == "FlakyError"
    assert await DeadLetters(redis, stack_name).count(fn) == 1


async def test_undecodable_entries_are_dead_lettered_and_work_goes_on(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"junk_{stack_name}"
    stack = Stack(stack_name, {fn: spec(fn, handler="tests.handlers_bus.record")})
    p = probe(fn)
    keys = FunctionKeys(stack_name, fn)
    dl = DeadLetters(redis, stack_name)
    wrong_version = msgpack.packb([99, "id", "src", "type", "queue", {}, 0.0] + [None] * 7)
    async with running(redis_url, stack, fn):
        await redis.xadd(keys.stream, {"d": b"\xc1\xc1 not msgpack"})
        await redis.xadd(keys.stream, {"x": b"no d field"})
        await redis.xadd(keys.stream, {"d": wrong_version})
        await Publisher(redis, stack_name).publish(
            [env("good1", {"g": 1}), env("good2", {"g": 2})], [Target(fn, QUEUE)]
        )
        await p.wait(lambda calls: len(calls) == 2)
        await wait_until(equals(lambda: dl.count(fn), 3), what="3 dead letters")
        await wait_until(equals(lambda: pending(redis, keys.stream), 0), what="all acked")
    assert [c.event for c in p.calls] == [{"g": 1}, {"g": 2}]
    letters = await dl.list(fn)
    assert [x.reason for x in letters] == ["undecodable"] * 3
    assert all(x.envelope is None and x.error_type == "UndecodableEntry" for x in letters)
    # Each is dead-lettered by its own task, so their order in the stream is not fixed.
    by_msg = {x.error_message.split(":")[0]: msgpack.unpackb(x.raw) for x in letters}
    assert by_msg == {
        "not msgpack": [b"d", b"\xc1\xc1 not msgpack"],
        "unexpected entry field b'x'": [b"x", b"no d field"],
        "unsupported envelope version 99": [b"d", wrong_version],
    }
    assert REGISTRY.get_sample_value("lambdabus_undecodable_entries_total", {"function": fn}) == 3
    assert await dl.redrive(fn) == (0, 3)  # undecodable letters can't be redriven


async def test_event_older_than_max_age_is_dead_lettered_without_running(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"aged_{stack_name}"
    policy = RetryPolicy(
        max_retry_attempts=5, max_event_age_s=60, backoff_base_s=0.05, backoff_cap_s=0.1
    )
    stack = Stack(stack_name, {fn: spec(fn, retry=policy)})
    p = probe(fn, fail_first=100)
    dl = DeadLetters(redis, stack_name)
    old = time.time() - 120
    async with running(redis_url, stack, fn):
        await Publisher(redis, stack_name).publish(
            [env("old", {"k": "old"}, time=old, first_seen=old)], [Target(fn, QUEUE)]
        )
        await wait_until(lambda: dl.count(fn), what="dead letter")
        assert await redis.zcard(FunctionKeys(stack_name, fn).delayed) == 0
    [letter] = await dl.list(fn)
    assert letter.reason == "EventAgeExceeded"
    assert letter.attempts == 0  # Lambda discards it unrun
    assert len(p.calls) == 0


async def test_event_dead_lettered_unrun_still_reaches_its_on_failure_destination(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    """The dispatch-time give-up (too old to run) takes the same path as a failed run:
    the OnFailure function gets Lambda's record with condition EventAgeExceeded."""
    fn, dest = f"stale_{stack_name}", f"stale_dest_{stack_name}"
    policy = RetryPolicy(max_retry_attempts=5, max_event_age_s=60)
    stack = Stack(
        stack_name,
        {
            fn: spec(fn, retry=policy, on_failure=dest),
            dest: FunctionSpec(dest, "tests.handlers_bus.record"),
        },
    )
    p, pd = probe(fn), probe(dest)
    old = time.time() - 120
    async with running(redis_url, stack, fn, dest):
        await Publisher(redis, stack_name).publish(
            [env("stale", {"k": "stale"}, time=old, first_seen=old)], [Target(fn, QUEUE)]
        )
        await pd.wait(lambda calls: len(calls) == 1)
    record = pd.calls[0].event
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestPayload"] == {"k": "stale"}
    assert len(p.calls) == 0
    assert await DeadLetters(redis, stack_name).count(fn) == 1
