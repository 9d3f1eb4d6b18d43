"""The scheduler against a real redis-server with an injected clock (no wall-clock waits):
three replicas over a simulated day fire every tick exactly once; catch-up after downtime
follows the policy; disabled schedules never fire; a tick can be fired ahead of time."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters.schedule.expressions import parse
from adapters.schedule.plan import Policy
from adapters.schedule.scheduler import FIRINGS, MISSED, Scheduler
from adapters.schedule.spec import ScheduleSpec
from bus.envelope import decode
from bus.keys import FunctionKeys
from bus.publish import Target
from bus.spec import Trigger

DAY = 86400.0
START = datetime(2026, 3, 28, 23, 59, 30, tzinfo=UTC).timestamp()
"""Just before a day on which Europe/Berlin springs forward (2026-03-29)."""


class ManualClock:
    """Time moves only when the test says so; ``sleep`` parks until then."""

    def __init__(self, now: float) -> None:
        self.t = now
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self.changed = asyncio.Event()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        if seconds <= 0 or stop.is_set():
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + seconds, fut))
        self.changed.set()
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fut, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            self.sleepers = [(d, f) for d, f in self.sleepers if f is not fut]

    async def idle(self, n: int) -> None:
        """Until ``n`` loops are parked in ``sleep`` (bounded: fails instead of hanging)."""
        async with asyncio.timeout(10):
            while len(self.sleepers) < n:
                self.changed.clear()
                await self.changed.wait()

    async def run_until(self, end: float, loops: int) -> None:
        """Advance to each next wake-up in turn, once every loop is parked, until ``end``."""
        while True:
            await self.idle(loops)
            nxt = min(d for d, _ in self.sleepers)
            if nxt > end:
                return
            self.t = nxt
            for deadline, fut in list(self.sleepers):
                if deadline <= self.t and not fut.done():
                    fut.set_result(None)
            self.sleepers = [(d, f) for d, f in self.sleepers if not f.done()]


def spec(event: str, text: str, tz: str | None = None, *, kind: str = "Schedule",
         enabled: bool = True, flex_s: int = 0) -> ScheduleSpec:  # fmt: skip
    return ScheduleSpec(
        function="Fn", event=event, kind=kind, expression=parse(text, tz, allow_at=True),
        text=text, name=f"s-Fn{event}", arn=f"arn:aws:events:us-east-1:1:rule/s-Fn{event}",
        input=None, enabled=enabled, flex_window_s=flex_s,
    )  # fmt: skip


def replica(redis: Redis, stack: str, specs: list[ScheduleSpec], clock: Any,
            policy: Policy | None = None, name: str = "r") -> Scheduler:  # fmt: skip
    targets = {s.rule: Target("Fn", Trigger(s.event)) for s in specs}
    return Scheduler(redis, stack, specs, targets, clock=clock, policy=policy, replica=name)


async def stream_ticks(redis: Redis, stack: str) -> list[tuple[str, float]]:
    entries = await redis.xrange(FunctionKeys(stack, "Fn").stream)
    return [(e.trigger, e.time) for e in (decode(fields[b"d"]) for _, fields in entries)]


def expected_ticks(s: ScheduleSpec, start: float, end: float) -> list[float]:
    out, t = [], start
    while (nxt := s.next_tick(t)) is not None and nxt <= end:
        out.append(nxt)
        t = nxt
    return out


async def test_three_replicas_fire_each_tick_exactly_once_over_a_day(
    redis: Redis, stack_name: str
) -> None:
    specs = [
        spec("Every5", "rate(5 minutes)"),
        spec("Quarter", "cron(0/15 * * * ? *)"),
        spec("Noon", "cron(0 12 * * ? *)"),
        spec("Berlin", "cron(30 2,3 * * ? *)", "Europe/Berlin", kind="ScheduleV2"),
        spec("Flex", "rate(1 hour)", kind="ScheduleV2", flex_s=20 * 60),
    ]
    clock = ManualClock(START)
    replicas = [replica(redis, stack_name, specs, clock, name=f"r{i}") for i in range(3)]
    for r in replicas:
        await r.start()
    await clock.run_until(START + DAY, loops=3)
    for r in replicas:
        assert await r.stop(1)

    want = {s.event: expected_ticks(s, START, START + DAY) for s in specs}
    # 02:30 does not exist in Berlin on 2026-03-29: only 03:30 fires that day.
    assert [datetime.fromtimestamp(t, UTC).strftime("%H:%M") for t in want["Berlin"]] == ["01:30"]
    assert (len(want["Every5"]), len(want["Quarter"]), len(want["Noon"])) == (288, 96, 1)

    fired = Counter((rule, tick) for r in replicas for rule, tick in r.fired)
    assert max(fired.values()) == 1  # no replica fired a tick another had fired
    per_rule = {s.event: sorted(t for (rule, t) in fired if rule == s.rule) for s in specs}
    # Flex ticks fire within 20 minutes after their tick; the day's last ones may be pending.
    assert per_rule["Flex"] == want["Flex"][: len(per_rule["Flex"])]
    assert len(per_rule["Flex"]) >= len(want["Flex"]) - 1
    del per_rule["Flex"], want["Flex"]
    assert per_rule == want
    assert all(len(r.fired) > 0 for r in replicas)  # the work really was shared
    on_bus = Counter(await stream_ticks(redis, stack_name))
    assert max(on_bus.values()) == 1
    assert sum(on_bus.values()) == sum(fired.values())


async def test_flexible_window_delays_within_the_window(redis: Redis, stack_name: str) -> None:
    s = spec("Flex", "rate(1 hour)", kind="ScheduleV2", flex_s=30 * 60)
    clock = ManualClock(START)
    r = replica(redis, stack_name, [s], clock)
    await r.start()
    fire_times: list[float] = []
    original = r._publish

    async def spy(sp: ScheduleSpec, tick: float, now: float) -> None:
        fire_times.append(now - tick)
        await original(sp, tick, now)

    r._publish = spy  # type: ignore[method-assign]
    await clock.run_until(START + 6 * 3600, loops=1)
    await r.stop(1)
    assert len(fire_times) >= 5
    assert all(0 <= d < 30 * 60 for d in fire_times)
    assert len(set(fire_times)) > 1  # really spread, not a constant offset


@pytest.mark.parametrize(("policy", "fired_late", "missed"), [
    (Policy("latest"), 1, 9),
    (Policy("none"), 0, 10),
    (Policy("all", max_catchup=4), 4, 6),
])  # fmt: skip
async def test_catch_up_after_downtime(
    redis: Redis, stack_name: str, policy: Policy, fired_late: int, missed: int
) -> None:
    s = spec("Hourly", "rate(1 hour)")
    clock = ManualClock(datetime(2026, 11, 27, 0, 0, 30, tzinfo=UTC).timestamp())
    first = replica(redis, stack_name, [s], clock, policy)
    await first.start()
    await clock.run_until(clock.t + 2 * 3600, loops=1)  # 01:00 and 02:00 fire
    await first.stop(1)
    assert len(first.fired) == 2

    clock.t += 10 * 3600 + 600  # down from 02:00:30 to 12:40:30: 03:00 … 12:00 missed
    before = MISSED.labels(s.rule)._value.get()
    again = [replica(redis, stack_name, [s], clock, policy, name=f"b{i}") for i in range(3)]
    for r in again:
        await r.start()
    await clock.run_until(clock.t + 3600, loops=3)  # and 13:00 fires on time
    for r in again:
        await r.stop(1)
    ticks = sorted(t for r in again for _, t in r.fired)
    hours = [datetime.fromtimestamp(t, UTC).hour for t in ticks]
    assert hours == [*range(13 - fired_late, 13), 13]
    assert MISSED.labels(s.rule)._value.get() - before == missed  # counted once, not 3x


async def test_disabled_schedule_never_fires(redis: Redis, stack_name: str) -> None:
    off = spec("Off", "rate(1 minute)", enabled=False)
    on = spec("On", "rate(10 minutes)")
    clock = ManualClock(START)
    r = replica(redis, stack_name, [off, on], clock)
    before = FIRINGS.labels("Fn.On")._value.get(), FIRINGS.labels("Fn.Off")._value.get()
    await r.start()
    await clock.run_until(START + 3600, loops=1)
    await r.stop(1)
    assert {rule for rule, _ in r.fired} == {"Fn.On"}
    after = FIRINGS.labels("Fn.On")._value.get(), FIRINGS.labels("Fn.Off")._value.get()
    assert (after[0] - before[0], after[1] - before[1]) == (6, 0)
    assert len(r.fired) == 6
    assert all(tr == "On" for tr, _ in await stream_ticks(redis, stack_name))


async def test_fire_next_runs_a_tick_ahead_and_the_scheduler_skips_it(
    redis: Redis, stack_name: str
) -> None:
    noon = spec("Noon", "cron(0 12 * * ? *)")
    clock = ManualClock(datetime(2026, 11, 27, 5, 0, tzinfo=UTC).timestamp())
    cli = replica(redis, stack_name, [noon], clock, name="cli")
    tick = await cli.fire_next("Fn.Noon")
    assert tick == datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
    assert await cli.fire_next("Fn.Noon") is None  # already fired: not twice
    with pytest.raises(KeyError, match=r"no schedule 'Fn\.Nope'"):
        await cli.fire_next("Fn.Nope")
    r = replica(redis, stack_name, [noon], clock)
    await r.start()
    await clock.run_until(tick + DAY + 1, loops=1)
    await r.stop(1)
    assert [t for _, t in r.fired] == [tick + DAY]  # today's noon was not fired again
    assert [t for _, t in await stream_ticks(redis, stack_name)] == [tick, tick + DAY]


async def test_crashed_claim_is_retaken_after_its_lease(redis: Redis, stack_name: str) -> None:
    """A replica that claimed a tick and died before publishing doesn't lose the tick."""
    s = spec("Hourly", "rate(1 hour)")
    clock = ManualClock(datetime(2026, 11, 27, 0, 59, 30, tzinfo=UTC).timestamp())
    tick = datetime(2026, 11, 27, 1, 0, tzinfo=UTC).timestamp()
    from bus.keys import schedule_claim

    await redis.set(schedule_claim(stack_name, s.rule, int(tick)), "dead", px=2000)
    r = replica(redis, stack_name, [s], clock)
    await r.start()
    await clock.run_until(tick + 1, loops=1)
    assert r.fired == []  # held by the dead replica's lease
    await redis.delete(schedule_claim(stack_name, s.rule, int(tick)))  # the lease expires
    await clock.run_until(tick + 10, loops=1)
    await r.stop(1)
    assert r.fired == [("Fn.Hourly", tick)]


async def test_a_failed_publish_is_retried_not_lost(redis: Redis, stack_name: str) -> None:
    s = spec("Hourly", "rate(1 hour)")
    tick = datetime(2026, 11, 27, 1, 0, tzinfo=UTC).timestamp()
    clock = ManualClock(tick - 30)
    r = replica(redis, stack_name, [s], clock)
    real = r.publisher.publish
    failures = []

    async def flaky(*args: Any, **kwargs: Any) -> int:
        if not failures:
            failures.append(1)
            raise ConnectionError("injected: Redis went away")
        return await real(*args, **kwargs)

    r.publisher.publish = flaky  # type: ignore[method-assign]
    await r.start()
    await clock.run_until(tick + 120, loops=1)
    await r.stop(1)
    assert failures == [1]
    assert r.fired == [("Fn.Hourly", tick)]
    assert await stream_ticks(redis, stack_name) == [("Hourly", tick)]


async def test_describe_names_the_next_schedule(redis: Redis, stack_name: str) -> None:
    clock = ManualClock(datetime(2026, 11, 27, 5, 0, tzinfo=UTC).timestamp())
    r = replica(redis, stack_name, [spec("Noon", "cron(0 12 * * ? *)"),
                                    spec("Hourly", "rate(1 hour)")], clock)  # fmt: skip
    assert r.describe() == "2 schedules; next: Fn.Hourly at 2026-11-27T06:00:00Z"
