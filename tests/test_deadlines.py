"""Deadlines of calls with one timeout on one loop timer (bus/deadlines.py).

Each test waits for an expiry it can await (a later call's), never a sleep: calls
with the same wait expire in the order they were added.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bus.deadlines import EARLY_S, Deadlines

WAIT_S = 0.05


async def test_calls_expire_in_order_once_their_wait_passed_unless_discarded() -> None:
    loop = asyncio.get_running_loop()
    expired: list[tuple[str, str, float]] = []
    last: asyncio.Future[None] = loop.create_future()

    def expire(key: str, info: str) -> None:
        expired.append((key, info, loop.time()))
        if key == "d":
            last.set_result(None)

    deadlines: Deadlines[str] = Deadlines(loop, WAIT_S, expire)
    added = {}
    for key in "abcd":
        added[key] = loop.time()
        deadlines.add(key, key.upper())
        await asyncio.sleep(0)  # a loop iteration between calls, as requests come
    deadlines.discard("b")
    await asyncio.wait_for(last, 5)
    assert [(k, i) for k, i, _ in expired] == [("a", "A"), ("c", "C"), ("d", "D")]
    for key, _, at in expired:
        assert at >= added[key] + WAIT_S - EARLY_S  # never early
    assert len(deadlines) == 0


async def test_the_timer_moves_on_when_the_oldest_call_finished_first() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    deadlines: Deadlines[str] = Deadlines(loop, WAIT_S, lambda key, _: done.set_result(key))
    deadlines.add("answered")  # arms the timer for its deadline
    await asyncio.sleep(0)
    deadlines.add("waiting")
    deadlines.discard("answered")  # the timer finds nothing due, re-arms for the next
    assert await asyncio.wait_for(done, 5) == "waiting"


async def test_a_failing_expiry_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    second: asyncio.Future[None] = loop.create_future()

    def expire(key: str, _: object) -> None:
        if key == "first":
            raise RuntimeError("boom")
        second.set_result(None)

    deadlines: Deadlines[str] = Deadlines(loop, WAIT_S, expire)
    deadlines.add("first")
    deadlines.add("second")
    await asyncio.wait_for(second, 5)
    assert "expiring 'first' failed" in caplog.text


async def test_an_expiry_may_add_a_call() -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []
    deadlines: Deadlines[str]

    def expire(key: str, _: object) -> None:
        seen.append(key)
        if key == "first":
            deadlines.add("again")
        else:
            done.set_result(None)

    deadlines = Deadlines(loop, WAIT_S, expire)
    deadlines.add("first")
    await asyncio.wait_for(done, 5)
    assert seen == ["first", "again"]


async def test_close_drops_every_call_unexpired() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    deadlines: Deadlines[str] = Deadlines(loop, WAIT_S, lambda key, _: fired.append(key))
    deadlines.add("a")
    deadlines.add("b")
    deadlines.close()
    assert len(deadlines) == 0
    clock: asyncio.Future[None] = loop.create_future()
    later: Deadlines[str] = Deadlines(loop, WAIT_S, lambda *_: clock.set_result(None))
    later.add("after")  # added after a and b: expires after their deadlines would have
    await asyncio.wait_for(clock, 5)
    assert fired == []


async def test_an_invoker_keeps_a_bounded_number_of_idle_timeout_groups() -> None:
    from bus.sync import MAX_TIMEOUT_GROUPS, Invoker

    invoker = Invoker("redis://127.0.0.1:1/0", "stack")  # connects only when used
    loop = asyncio.get_running_loop()
    busy = invoker._new_deadlines(loop, 1.0)
    busy.add(loop.create_future(), "fn")  # a call waiting: its group must stay
    for n in range(3 * MAX_TIMEOUT_GROUPS):
        invoker._new_deadlines(loop, 2.0 + n)
    assert len(invoker._deadlines) <= MAX_TIMEOUT_GROUPS + 1
    assert invoker._deadlines[1.0] is busy
    busy.close()
    await invoker.redis.aclose()


class ClockLoop:
    """The two loop methods Deadlines uses, on a clock the test moves: no real waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[asyncio.TimerHandle] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, (), asyncio.get_running_loop())
        self.timers.append(handle)
        return handle

    def armed(self) -> asyncio.TimerHandle:
        [timer] = [t for t in self.timers if not t.cancelled()]
        return timer

    def run_timer(self) -> None:
        timer = self.armed()
        self.now = max(self.now, timer.when())
        self.timers.remove(timer)
        timer._run()


async def test_expiries_that_add_and_discard_calls_leave_the_others_on_time() -> None:
    """An expiry may discard a call that is due too, and add one: the rest still expire
    when theirs passes, not a whole wait later, and the discarded one never does."""
    clock = ClockLoop()
    fired: dict[str, float] = {}
    deadlines: Deadlines[str]

    def expire(key: str, _: object) -> None:
        fired[key] = clock.now
        if key == "a":
            deadlines.discard("b")  # due as well
            deadlines.add("late")  # waits a whole WAIT_S from now

    deadlines = Deadlines(clock, WAIT_S, expire)  # type: ignore[arg-type]
    deadlines.add("a")
    deadlines.add("b")
    clock.now = WAIT_S / 2
    deadlines.add("c")
    clock.run_timer()  # a's and b's deadline
    assert fired == {"a": WAIT_S}
    assert clock.armed().when() == WAIT_S * 1.5  # c's, not held back behind "late"
    clock.run_timer()
    assert fired == {"a": WAIT_S, "c": WAIT_S * 1.5}
    assert clock.armed().when() == WAIT_S * 2  # "late"
    clock.run_timer()
    assert list(fired) == ["a", "c", "late"] and len(deadlines) == 0


async def test_adding_a_waiting_key_again_restarts_its_wait() -> None:
    loop = asyncio.get_running_loop()
    order: list[str] = []
    done: asyncio.Future[None] = loop.create_future()

    def expire(key: str, _: object) -> None:
        order.append(key)
        if len(order) == 2:
            done.set_result(None)

    deadlines: Deadlines[str] = Deadlines(loop, WAIT_S, expire)
    deadlines.add("again")
    await asyncio.sleep(0)
    deadlines.add("other")
    await asyncio.sleep(0)
    deadlines.add("again")  # its wait starts over: "other" is now the oldest
    await asyncio.wait_for(done, 5)
    assert order == ["other", "again"]
