"""ReportBatchItemFailures (SQS semantics): only the named records are retried."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from bus.deadletter import DeadLetters
from bus.keys import GROUP, FunctionKeys
from bus.publish import Publisher, Target
from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger
from tests.handlers_bus import Probe, env, probe, running, wait_until

SQS = Trigger(
    "sqs", shape="records", batch_size=10, batching_window_s=0.5,
    partial_batch="items", item_id_path=("messageId",),
)  # fmt: skip
RETRY = RetryPolicy(max_retry_attempts=2, backoff_base_s=0.05, backoff_cap_s=0.1)


def sqs_record(i: int) -> dict[str, object]:
    return {"messageId": f"msg-{i}", "body": f"body {i}", "eventSource": "aws:sqs"}


def stack_for(stack_name: str, fn: str) -> Stack:
    spec = FunctionSpec(fn, "tests.handlers_bus.partial", retry=RETRY, triggers={"sqs": SQS})
    return Stack(stack_name, {fn: spec})


def ids(records: list[dict[str, object]]) -> list[str]:
    return [str(r["messageId"]) for r in records]


async def publish_ten(redis: Redis, stack_name: str, fn: str) -> list[str]:
    envs = [env(f"e{i}", sqs_record(i)) for i in range(10)]
    assert await Publisher(redis, stack_name).publish(envs, [Target(fn, SQS)]) == 10
    return [f"msg-{i}" for i in range(10)]


async def settled(redis: Redis, stack_name: str, fn: str) -> None:
    keys = FunctionKeys(stack_name, fn)

    async def idle() -> bool:
        pend = (await redis.xpending(keys.stream, GROUP))["pending"]
        return pend == 0 and await redis.zcard(keys.delayed) == 0

    await wait_until(idle, what="stream settled")


async def test_only_reported_items_are_retried(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"partial_{stack_name}"
    p: Probe = probe(
        fn,
        responses=[
            {"batchItemFailures": [{"itemIdentifier": "msg-3"}, {"itemIdentifier": "msg-7"}]}
        ],
    )
    async with running(redis_url, stack_for(stack_name, fn), fn):
        every = await publish_ten(redis, stack_name, fn)
        await p.wait(lambda calls: len(calls) >= 2)
        await settled(redis, stack_name, fn)
    assert ids(p.calls[0].records) == every  # one batch of all ten
    assert sorted(ids(p.calls[1].records)) == ["msg-3", "msg-7"]
    assert len(p.calls) == 2
    counts = Counter(ids(p.all_records()))
    assert counts == {m: 2 if m in ("msg-3", "msg-7") else 1 for m in every}
    assert await DeadLetters(redis, stack_name).count(fn) == 0


async def test_unknown_item_identifier_fails_whole_batch(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"partial_bad_{stack_name}"
    p = probe(fn, responses=[{"batchItemFailures": [{"itemIdentifier": "no-such-message"}]}])
    async with running(redis_url, stack_for(stack_name, fn), fn):
        every = await publish_ten(redis, stack_name, fn)
        await p.wait(lambda _: Counter(ids(p.all_records())) == dict.fromkeys(every, 2))
        await settled(redis, stack_name, fn)
    assert ids(p.calls[0].records) == every
    assert Counter(ids(p.all_records())) == dict.fromkeys(every, 2)
    assert await DeadLetters(redis, stack_name).count(fn) == 0
