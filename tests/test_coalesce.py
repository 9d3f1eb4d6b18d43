"""Coalescing: concurrent single-event calls share one batch call, and each caller
sees that batch's outcome."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from bus.coalesce import Coalescer
from bus.envelope import Envelope
from bus.keys import FunctionKeys
from bus.publish import CoalescingPublisher, Publisher, Target
from bus.spec import DIRECT


async def test_callers_of_one_turn_share_one_batch() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        batches.append(items)

    c: Coalescer[int] = Coalescer(flush)
    await asyncio.gather(*(c.submit(i) for i in range(100)))
    assert sorted(i for b in batches for i in b) == list(range(100))
    assert len(batches) <= 2  # the first caller's turn, then everyone else's


async def test_a_failed_batch_fails_its_callers_only() -> None:
    calls = 0

    async def flush(items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")

    c: Coalescer[int] = Coalescer(flush)
    with pytest.raises(ConnectionError):
        await c.submit(1)
    await c.submit(2)  # the next batch goes through
    assert calls == 2


async def test_coalescing_publisher_is_idempotent_and_fans_out(
    redis: Redis, stack_name: str
) -> None:
    pub = CoalescingPublisher(Publisher(redis, stack_name))
    targets = [Target("a", DIRECT), Target("b", DIRECT)]
    now = time.time()
    envs = [Envelope(f"e{i % 50}", "test", "t", DIRECT.name, i, now) for i in range(100)]
    await asyncio.gather(*(pub.publish(e, targets) for e in envs))
    for fn in ("a", "b"):
        assert await redis.xlen(FunctionKeys(stack_name, fn).stream) == 50
