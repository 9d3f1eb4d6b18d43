"""Which ticks of a schedule to fire now: pure functions, no Redis, no clock of their own.

Catch-up after downtime is a policy (``LAMBDABUS_SCHEDULE_CATCHUP``):

- ``latest`` (default): of the ticks missed while nothing ran, fire only the newest —
  a daily backup that missed noon runs once when the scheduler returns, not N times;
- ``none``: fire none of them (AWS's own behaviour: a missed rule tick is gone);
- ``all``: fire them, oldest first, but at most ``max_catchup`` (the newest ones), never
  a burst of hundreds.

A tick is *late* when its due time is more than ``grace_s`` behind the clock; ticks due
within the grace are on time and always fire. Ticks older than ``lookback_s`` are neither
fired nor counted (bounds the work after a long outage). Missed ticks are the late ones
not fired. A tick claimed while on time (by any replica) is *owed*: it fires whatever the
policy, even once late — it was never missed, its first claimant just died.

Only the newest ``listed`` late ticks are returned one by one (the policy never fires
more than ``max_catchup``); older ones are only counted, so a week of a minutely
schedule costs one walk of the calendar and no list of 10,080 ticks.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .spec import ScheduleSpec

CatchUp = Literal["latest", "none", "all"]
CATCHUP_POLICIES: tuple[CatchUp, ...] = ("latest", "none", "all")
MAX_TICKS_PER_PLAN = 20_000
"""Ticks examined in one plan at most (a rate(1 minute) schedule has 10,080 in a week)."""


@dataclass(frozen=True)
class Policy:
    catchup: CatchUp = "latest"
    max_catchup: int = 10
    grace_s: float = 60.0
    lookback_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if self.catchup not in CATCHUP_POLICIES:
            raise ValueError(f"catch-up policy must be one of {CATCHUP_POLICIES}, "
                             f"got {self.catchup!r}")  # fmt: skip
        if self.max_catchup < 1 or self.grace_s < 0 or self.lookback_s <= 0:
            raise ValueError("max_catchup >= 1, grace_s >= 0 and lookback_s > 0 required")


def flex_delay(spec: ScheduleSpec, tick: float) -> float:
    """FlexibleTimeWindow: a delay in [0, window) that every replica computes alike."""
    if spec.flex_window_s <= 0:
        return 0.0
    digest = hashlib.blake2b(f"{spec.rule}\x00{int(tick)}".encode(), digest_size=8).digest()
    return float(int.from_bytes(digest, "big") % spec.flex_window_s)


def due_at(spec: ScheduleSpec, tick: float) -> float:
    return tick + flex_delay(spec, tick)


@dataclass
class Cursor:
    """What one replica has handled of one schedule."""

    after: float
    """Every tick up to here is handled or in ``waiting``."""
    waiting: set[float] = field(default_factory=set)
    """Ticks at or before ``after`` not handled yet (inside their flexible window, or
    claimed by a replica that has not finished)."""
    owed: set[float] = field(default_factory=set)
    """Waiting ticks seen claimed while on time: fired whatever the policy once won."""

    def watermark(self) -> float:
        """Handled through here: the scheduler resumes after it (just before the oldest
        waiting tick, so a restart re-examines that one)."""
        return min([self.after, *(t - 1e-3 for t in self.waiting)])


@dataclass(frozen=True)
class Plan:
    on_time: list[float]
    late: list[float]
    """The newest late ticks (at most ``listed(policy)``), oldest first; not owed ones."""
    late_count: int
    """All late ticks, listed or not."""
    fire_late: list[float]
    """The late ticks the policy fires, were all of ``late`` still unfired."""
    owed: list[float] = field(default_factory=list)
    """Late ticks that were claimed on time: they fire like on-time ones."""


def listed(policy: Policy) -> int:
    """How many late ticks a plan lists: room for the policy's pick even when a few of
    the newest were already fired (a flexible window, ``--fire``)."""
    return policy.max_catchup + 50


def choose(policy: Policy, late: Sequence[float]) -> list[float]:
    """Which of ``late`` (oldest first, none fired yet) the policy fires."""
    if policy.catchup == "latest":
        return list(late[-1:])
    if policy.catchup == "all":
        return list(late[-policy.max_catchup :])
    return []


def plan(spec: ScheduleSpec, cursor: Cursor, now: float, policy: Policy) -> Plan:
    """Advance ``cursor`` to ``now`` and say which ticks are due. Pure but for ``cursor``."""
    horizon = now - policy.lookback_s
    start = max(cursor.after, horizon)
    on_time: list[float] = []
    late: deque[float] = deque(maxlen=listed(policy))
    owed: list[float] = []
    late_count = 0
    waiting: set[float] = set()

    def sort(tick: float) -> None:
        nonlocal late_count
        due = due_at(spec, tick)
        if due > now:
            waiting.add(tick)
        elif due >= now - policy.grace_s:
            on_time.append(tick)
        elif tick in cursor.owed:
            owed.append(tick)
        else:
            late.append(tick)
            late_count += 1

    for tick in sorted(t for t in cursor.waiting if t > horizon):
        sort(tick)
    examined, exhausted = 0, True
    for tick in spec.ticks(start):
        if tick > now:
            break
        if examined >= MAX_TICKS_PER_PLAN:
            exhausted = False
            break
        sort(tick)
        cursor.after = tick
        examined += 1
    if exhausted:
        cursor.after = max(cursor.after, now)
    cursor.waiting = waiting
    cursor.owed &= waiting | set(on_time) | set(owed)
    return Plan(on_time=on_time, late=list(late), late_count=late_count,
                fire_late=choose(policy, list(late)), owed=owed)  # fmt: skip


def next_wake(spec: ScheduleSpec, cursor: Cursor) -> float | None:
    """When this schedule next needs attention: its next tick's due time, or a waiting one."""
    times = [due_at(spec, t) for t in cursor.waiting]
    t = spec.next_tick(cursor.after)
    if t is not None:
        times.append(due_at(spec, t))
    return min(times) if times else None
