"""Ordered triggers (DynamoDB Streams / Kinesis / SQS FIFO semantics): a failing batch
blocks only its own partition, bisect isolates a poison record, and a partition has
one owner at a time."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from bus.deadletter import DeadLetters
from bus.envelope import Envelope
from bus.keys import FunctionKeys
from bus.publish import Publisher, Target
from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger
from tests.handlers_bus import Call, env, probe, running, wait_until

FAST = RetryPolicy(max_retry_attempts=2, backoff_base_s=0.05, backoff_cap_s=0.2)


def rec(partition: str, n: int, **extra: object) -> dict[str, object]:
    return {"p": partition, "n": n, **extra}


def publish_args(
    trigger: Trigger, fn: str, records: list[dict[str, object]]
) -> tuple[list[Envelope], list[Target]]:
    envs = [env(f"{r['p']}-{r['n']}", r, partition=str(r["p"])) for r in records]
    return envs, [Target(fn, trigger)]


def has(call: Call, partition: str, n: int) -> bool:
    return any(r["p"] == partition and r["n"] == n for r in call.records)


def first_success_order(calls: list[Call], partition: str) -> list[int]:
    order: list[int] = []
    for c in calls:
        if c.ok:
            for r in c.records:
                if r["p"] == partition and r["n"] not in order:
                    order.append(r["n"])
    return order


async def test_failing_batch_blocks_only_its_partition(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"ordered_{stack_name}"
    trig = Trigger("ddb", ordered=True, shape="records", batch_size=5, max_retry_attempts=-1)
    stack = Stack(stack_name, {fn: FunctionSpec(
        fn, "tests.handlers_bus.gated", retry=FAST, triggers={"ddb": trig})})  # fmt: skip
    p = probe(fn)
    pub = Publisher(redis, stack_name)
    async with running(redis_url, stack, fn):
        first = [rec("A", 1), rec("A", 2), rec("B", 1), rec("B", 2)]
        assert await pub.publish(*publish_args(trig, fn, first)) == 4

        def a_failed(times: int) -> Callable[[list[Call]], bool]:
            return lambda calls: sum(1 for c in calls if has(c, "A", 2) and c.ok is False) >= times

        await p.wait(a_failed(2))  # retried in place
        await p.wait(lambda calls: first_success_order(calls, "B") == [1, 2])

        later = [rec("A", 3), rec("A", 4), rec("B", 3), rec("B", 4)]
        assert await pub.publish(*publish_args(trig, fn, later)) == 4
        await p.wait(lambda calls: first_success_order(calls, "B") == [1, 2, 3, 4])
        failures = sum(1 for c in p.calls if has(c, "A", 2) and c.ok is False)
        await p.wait(a_failed(failures + 2))  # A kept retrying after A/3, A/4 arrived
        # A is blocked at its failing batch: nothing after it ran, not even once.
        assert not any(has(c, "A", 3) or has(c, "A", 4) for c in p.calls)
        assert first_success_order(p.calls, "A") == []
        assert all(sorted(r["n"] for r in c.records) == [1, 2] for c in p.calls if has(c, "A", 2))

        p.gate.set()
        await p.wait(lambda calls: first_success_order(calls, "A") == [1, 2, 3, 4])

        async def drained() -> bool:
            return await redis.zcard(FunctionKeys(stack_name, fn).partitions) == 0

        await wait_until(drained, what="partitions drained")
    assert first_success_order(p.calls, "A") == [1, 2, 3, 4]
    # B's later events completed while A was still blocked.
    a_ok = min(c.start for c in p.calls if c.ok and has(c, "A", 2))
    b4_ok = min(c.end for c in p.calls if c.ok and c.end is not None and has(c, "B", 4))
    assert b4_ok < a_ok
    assert await DeadLetters(redis, stack_name).count(fn) == 0


def bisect_stack(stack_name: str, fn: str, max_retries: int) -> tuple[Stack, Trigger]:
    trig = Trigger(
        "ddb", ordered=True, shape="records", batch_size=4,
        bisect_on_error=True, max_retry_attempts=max_retries,
    )  # fmt: skip
    spec = FunctionSpec(fn, "tests.handlers_bus.poison", retry=FAST, triggers={"ddb": trig})
    return Stack(stack_name, {fn: spec}), trig


# Retries run out at different depths of the bisection: with few retries a give-up
# right after a split once dead-lettered the whole unsplit batch (fixed in fcf830ea).
@pytest.mark.parametrize(
    ("max_retries", "poison_at"), [(2, 2), (2, 0), (1, 0), (1, 3), (0, 2), (0, 0)]
)
async def test_bisect_isolates_poison_record(
    redis_url: str, redis: Redis, stack_name: str, max_retries: int, poison_at: int
) -> None:
    fn = f"bisect{max_retries}{poison_at}_{stack_name}"
    stack, trig = bisect_stack(stack_name, fn, max_retries)
    p = probe(fn)
    dl = DeadLetters(redis, stack_name)
    records = [rec("P", n, poison=True) if n == poison_at else rec("P", n) for n in range(5)]
    async with running(redis_url, stack, fn):
        assert await Publisher(redis, stack_name).publish(*publish_args(trig, fn, records)) == 5
        await p.wait(lambda calls: any(has(c, "P", 4) and c.ok for c in calls))

        async def drained() -> bool:
            return await redis.zcard(FunctionKeys(stack_name, fn).partitions) == 0

        # Dead letters are written before the commit that drains the partition.
        await wait_until(drained, what="partition drained")
    assert p.calls[0].records == records[:4]  # the poison was in a batch of 4
    letters = await dl.list(fn)
    dead = [x.envelope.record["n"] for x in letters if x.envelope]
    assert dead == [poison_at], f"dead-lettered records: {dead}"
    # Every good record was processed, in order, exactly once.
    assert [r["n"] for r in p.ok_records()] == [n for n in range(5) if n != poison_at]
    assert letters[0].reason == "RetriesExhausted"
    assert letters[0].error_type == "FlakyError"
    # Splits don't use up retries: the isolated poison record gets all of them.
    alone = [c for c in p.calls if c.records == [records[poison_at]]]
    assert len(alone) == max_retries + 1
    assert letters[0].attempts == max_retries + 1


async def test_partition_has_one_consumer_at_a_time(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"lease_{stack_name}"
    trig = Trigger("fifo", ordered=True, shape="records", batch_size=1)
    # max_concurrency bounds the partitions one worker owns, so both workers get some.
    spec = FunctionSpec(
        fn, "tests.handlers_bus.gated", retry=FAST, triggers={"fifo": trig}, max_concurrency=2
    )
    stack = Stack(stack_name, {fn: spec})
    p = probe(fn)
    p.delay_s = 0.05
    parts, per_part = ["W", "X", "Y", "Z"], 8
    records = [rec(part, n) for n in range(1, per_part + 1) for part in parts]
    async with running(redis_url, stack, fn, fn) as (w1, w2):
        assert w1.consumer != w2.consumer
        assert await Publisher(redis, stack_name).publish(*publish_args(trig, fn, records)) == 32
        await p.wait(lambda calls: sum(1 for c in calls if c.ok) == 32, within=15)
    windows: dict[str, list[Call]] = defaultdict(list)
    for c in p.calls:
        [r] = c.records
        windows[r["p"]].append(c)
    for part, calls in windows.items():
        calls.sort(key=lambda c: c.start)
        assert [c.records[0]["n"] for c in calls] == list(range(1, per_part + 1)), part
        for before, after in itertools.pairwise(calls):
            assert before.end is not None and before.end <= after.start, (
                f"partition {part}: {before.stream} and {after.stream} overlapped"
            )
    owners = {c.stream for c in p.calls}
    assert owners == {w1.consumer, w2.consumer}


async def test_records_too_old_to_retry_are_given_up_as_event_age_exceeded(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    """MaximumRecordAgeInSeconds, not the retry count, ends this one: the dead letter (and
    so an OnFailure record) says EventAgeExceeded, as Lambda's condition would."""
    fn = f"aged_{stack_name}"
    trig = Trigger("ddb", ordered=True, shape="records", batch_size=1,
                   max_retry_attempts=-1, max_record_age_s=60)  # fmt: skip
    stack = Stack(stack_name, {fn: FunctionSpec(
        fn, "tests.handlers_bus.poison", retry=FAST, triggers={"ddb": trig})})  # fmt: skip
    probe(fn)
    old = time.time() - 120
    envs = [env("A-1", rec("A", 1, poison=True), partition="A", time=old, first_seen=old)]
    dl = DeadLetters(redis, stack_name)
    async with running(redis_url, stack, fn):
        assert await Publisher(redis, stack_name).publish(envs, [Target(fn, trig)]) == 1
        await wait_until(lambda: dl.count(fn), what="dead letter")
    [letter] = await dl.list(fn)
    assert letter.reason == "EventAgeExceeded"
