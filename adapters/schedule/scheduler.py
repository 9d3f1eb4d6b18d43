"""The scheduler: fires every schedule of a template, exactly once per tick, from any
number of replicas.

Exactly once: before publishing a tick, a replica claims ``(schedule, tick)`` with one
``SET key owner NX PX lease``; only the winner publishes, then marks the claim ``done``
for ``keep_s`` (longer than any replica could still consider the tick due). A replica
that dies between claim and publish leaves a lease that expires, after which another
replica claims the tick again; if the dead one had in fact published, the bus's dedupe
(envelope id = schedule + tick) drops the second copy. A tick seen claimed while on time
is *owed*: it fires when re-claimed even if it is late by then, whatever the catch-up
policy, and the lease (15 s) is well inside the grace (60 s) so it usually is not. So a
tick fires once even across crashes, and never twice on the bus.

Catch-up (see :mod:`adapters.schedule.plan`): each schedule has a *watermark* in Redis —
every tick up to it is handled (fired, counted missed, or seen done). Each round writes
``min(oldest waiting tick, cursor)``; a replica starting up resumes from it, so ticks
missed while no scheduler ran — including a schedule's very first tick and an ``at()``
whose time passes during a restart, and a tick still inside its flexible window — are
handled by the policy. A schedule with no watermark yet gets ``now`` (``SET NX``, so all
replicas agree). The late ticks are claimed all at once (one script) by one replica,
which applies the policy and counts the missed ones (no triple counting). ``--fire``
never moves the watermark.

One schedule failing (a bad ``Input``, a bug) is logged, counted in
``lambdabus_adapter_errors_total{adapter="scheduler"}`` and retried with backoff; the
other schedules keep firing.

Time is injected (:class:`Clock`): the loop asks the clock for ``now`` and sleeps on it
until the next due tick, so tests drive a day in milliseconds without wall-clock waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import Counter
from redis.asyncio import Redis

from bus import metrics
from bus.keys import schedule_claim, schedule_watermark
from bus.publish import Publisher, Target

from .events import envelope_for, iso
from .plan import Cursor, Plan, Policy, choose, next_wake, plan
from .spec import ScheduleSpec

log = logging.getLogger(__name__)

FIRINGS = Counter("lambdabus_schedule_firings", "Schedule ticks fired (published).",
                  ["schedule"])  # fmt: skip
MISSED = Counter(
    "lambdabus_schedule_missed_ticks",
    "Schedule ticks not fired because no scheduler ran in time (per the catch-up policy).",
    ["schedule"],
)
DONE = b"done"
WATERMARK_TTL_S = 90 * 86400.0
"""A removed schedule's watermark goes away eventually; a live one is rewritten each round."""
CLAIM_LATE = """
-- Claim every late tick of one schedule at once (KEYS: their claim keys, oldest first),
-- so one replica applies the catch-up policy to all of them. -1 if another replica
-- holds one; else per tick 1 = now ours (free, or ours from a failed round), 0 = done.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == 'done' then out[i] = 0
  elseif (not v) or v == ARGV[1] then out[i] = 1
  else return -1 end
end
for i, key in ipairs(KEYS) do
  if out[i] == 1 then redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
end
return out
"""


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        """Return after ``seconds`` of this clock's time, or as soon as ``stop`` is set."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass


class Scheduler:
    """Fires the schedules of one stack; run as many replicas as you like."""

    def __init__(
        self,
        redis: Redis,
        stack: str,
        specs: Sequence[ScheduleSpec],
        targets: Mapping[str, Target],
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        clock: Clock | None = None,
        policy: Policy | None = None,
        lease_s: float = 15.0,
        keep_s: float = 2 * 86400.0,
        max_sleep_s: float = 60.0,
        retry_s: float = 1.0,
        replica: str | None = None,
    ) -> None:
        missing = [s.rule for s in specs if s.rule not in targets]
        if missing:
            raise ValueError(f"no target for schedules {missing}")
        self.redis = redis
        self.stack = stack
        self.specs = {s.rule: s for s in specs}
        self.targets = dict(targets)
        self.region, self.account = region, account
        self.clock: Clock = clock or WallClock()
        self.policy = policy or Policy()
        self.lease_ms = int(lease_s * 1000)
        self.keep_s = keep_s
        self.max_sleep_s = max_sleep_s
        self.retry_s = retry_s
        self.replica = replica or uuid.uuid4().hex[:12]
        self.publisher = Publisher(redis, stack)
        self.cursors: dict[str, Cursor] = {}
        self._saved: dict[str, float] = {}
        """The watermark this replica last wrote, per schedule (skip rewriting it)."""
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        """A failing schedule is retried from then (backoff), not every round."""
        self._claim_late = redis.register_script(CLAIM_LATE)
        self.fired: list[tuple[str, float]] = []
        """(schedule, tick) this replica published, in order (for tests and ``status``)."""
        self.stopping = False
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._task is not None and not self._task.done() and not self.stopping

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"scheduler:{self.replica}")
        log.info("scheduler %s started: %d schedules", self.replica, len(self.specs))

    async def stop(self, grace_s: float = 10.0) -> bool:
        """Stop; a tick being published gets ``grace_s`` to finish (its claim then holds)."""
        self.stopping = True
        self._stop.set()
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=grace_s)
        if not done:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return bool(done)

    async def run(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                if await self.run_due() is None:  # each failure is logged and counted
                    failures += 1
                    delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                else:
                    failures = 0
                    wake = self.next_wake()
                    now = self.clock.now()
                    delay = self.max_sleep_s if wake is None else min(wake - now, self.max_sleep_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                metrics.ADAPTER_ERRORS.labels("scheduler").inc()
                log.exception("scheduler %s: round failed; retrying", self.replica)
                delay = min(30.0, 0.5 * 2 ** min(failures, 6))
            await self.clock.sleep(max(0.0, delay), self._stop)

    def next_wake(self) -> float | None:
        """The earliest due time ahead; a tick already due is held by another replica (a
        round fires everything else that is due), so look at it again in ``retry_s``."""
        now = self.clock.now()
        wakes = [max(w if w > now else now + self.retry_s, self._retry_at.get(rule, 0.0))
                 for rule, c in self.cursors.items()
                 if (w := next_wake(self.specs[rule], c)) is not None]  # fmt: skip
        return min(wakes) if wakes else None

    def describe(self) -> str:
        """One line for ``lambdabus dev``: how many schedules, and which fires next."""
        now = self.clock.now()
        upcoming = sorted((t, rule) for rule, spec in self.specs.items()
                          if spec.enabled and (t := spec.next_tick(now)) is not None)  # fmt: skip
        text = f"{len(self.specs)} schedule{'s' if len(self.specs) != 1 else ''}"
        if upcoming:
            text += f"; next: {upcoming[0][1]} at {iso(upcoming[0][0])}"
        return text

    # -- one round ----------------------------------------------------------------------

    async def run_due(self) -> int | None:
        """Fire what is due now on every schedule; returns how many ticks this replica fired,
        or None if every schedule it tried failed (Redis gone: the caller backs off)."""
        now = self.clock.now()
        fired, tried, failed = 0, 0, 0
        for rule, spec in self.specs.items():
            if not spec.enabled or self._retry_at.get(rule, 0.0) > now:
                continue
            tried += 1
            try:
                cursor = self.cursors.get(rule)
                if cursor is None:
                    cursor = Cursor(await self._resume_from(rule, now))
                    self.cursors[rule] = cursor
                fired += await self._run_schedule(spec, cursor, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                failed += 1
                n = self._failures[rule] = self._failures.get(rule, 0) + 1
                self._retry_at[rule] = now + min(30.0, 0.5 * 2 ** min(n, 6))
                metrics.ADAPTER_ERRORS.labels("scheduler").inc()
                log.exception("scheduler %s: schedule %s failed (%d in a row); other "
                              "schedules carry on", self.replica, rule, n)  # fmt: skip
            else:
                self._failures.pop(rule, None)
                self._retry_at.pop(rule, None)
        return None if tried and failed == tried else fired

    async def _resume_from(self, rule: str, now: float) -> float:
        """Where a replica starts: the schedule's watermark; a schedule nobody ran yet
        starts now (``SET NX``: the first replica's now is everyone's)."""
        key = schedule_watermark(self.stack, rule)
        await self.redis.set(key, repr(now), nx=True, px=int(WATERMARK_TTL_S * 1000))
        stored = await self.redis.get(key)
        mark = now if stored is None else float(stored)
        self._saved[rule] = mark
        return min(mark, now)

    async def _save_watermark(self, rule: str, cursor: Cursor) -> None:
        mark = cursor.watermark()
        if self._saved.get(rule) != mark:
            key = schedule_watermark(self.stack, rule)
            await self.redis.set(key, repr(mark), px=int(WATERMARK_TTL_S * 1000))
            self._saved[rule] = mark

    async def _run_schedule(self, spec: ScheduleSpec, cursor: Cursor, now: float) -> int:
        """Ticks stay in ``cursor.waiting`` until handled, so a round that fails midway (Redis
        gone) retries them in the next one; a claim this replica holds is its own to retry."""
        p = plan(spec, cursor, now, self.policy)
        cursor.waiting.update(p.late + p.owed + p.on_time)
        fired = await self._catch_up(spec, cursor, p, now) if p.late else 0
        for tick in p.owed + p.on_time:
            state = await self._claim(spec, tick)
            if state != "done":
                cursor.owed.add(tick)  # claimed on time: fire it even if it is late by then
            if state == "won":
                await self._publish(spec, tick, now)
                fired += 1
            if state != "held":
                cursor.waiting.discard(tick)
                cursor.owed.discard(tick)
        await self._save_watermark(spec.rule, cursor)
        return fired

    async def _catch_up(self, spec: ScheduleSpec, cursor: Cursor, p: Plan, now: float) -> int:
        """Claim the late ticks together; the policy picks among those nobody fired yet.
        The skipped ones are marked done (and counted) before any is published, so a
        retry after a failed publish sees only the picked ones still to do."""
        keys = [schedule_claim(self.stack, spec.rule, int(t)) for t in p.late]
        flags = await self._claim_late(keys=keys, args=[self.replica, self.lease_ms])
        if not isinstance(flags, list):
            return 0  # another replica is catching up; look again later
        ours = [t for t, flag in zip(p.late, flags, strict=True) if flag == 1]
        fire = choose(self.policy, ours)
        skipped = [t for t in ours if t not in fire]
        if skipped:
            await self._mark_done(spec, skipped, now)
        missed = len(skipped) + (p.late_count - len(p.late) if ours else 0)
        if missed:
            MISSED.labels(spec.rule).inc(missed)
            log.warning("schedule %s: %d ticks missed (catch-up policy %s)",
                        spec.rule, missed, self.policy.catchup)  # fmt: skip
        for tick in fire:
            await self._publish(spec, tick, now)
            cursor.waiting.discard(tick)
        cursor.waiting.difference_update(p.late)
        return len(fire)

    async def _claim(self, spec: ScheduleSpec, tick: float) -> str:
        """``won``, ``done`` (someone fired it) or ``held`` (someone is firing it now)."""
        key = schedule_claim(self.stack, spec.rule, int(tick))
        if await self.redis.set(key, self.replica, nx=True, px=self.lease_ms):
            return "won"
        value = await self.redis.get(key)
        if value in (DONE, DONE.decode()):
            return "done"
        if value in (self.replica, self.replica.encode()):
            return "won"  # our own lease, left by a round that failed before publishing
        return "held"  # None too: the holder's lease just expired; look again later

    async def _publish(self, spec: ScheduleSpec, tick: float, now: float) -> None:
        env = envelope_for(spec, tick, self.region, self.account, now)
        await self.publisher.publish([env], [self.targets[spec.rule]])
        await self._mark_done(spec, [tick], now)
        FIRINGS.labels(spec.rule).inc()
        self.fired.append((spec.rule, tick))

    async def _mark_done(self, spec: ScheduleSpec, ticks: list[float], now: float) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for tick in ticks:
            keep_ms = int((max(0.0, tick - now) + self.keep_s) * 1000)
            pipe.set(schedule_claim(self.stack, spec.rule, int(tick)), DONE, px=keep_ms)
        await pipe.execute()

    # -- run a schedule now ---------------------------------------------------------------

    async def fire_next(self, rule: str) -> float | None:
        """Fire ``rule``'s next tick now, ahead of time (its ``time`` stays the scheduled
        one); the scheduler will not fire that tick again. None if someone already did, or
        the schedule has no next tick."""
        spec = self.specs.get(rule)
        if spec is None:
            known = ", ".join(sorted(self.specs)) or "none"
            raise KeyError(f"no schedule {rule!r} (known: {known})")
        now = self.clock.now()
        tick = spec.next_tick(now)
        if tick is None or await self._claim(spec, tick) != "won":
            return None
        await self._publish(spec, tick, now)
        return tick


def _policy_from_env(env: Mapping[str, str]) -> Policy:
    return Policy(
        catchup=env.get("LAMBDABUS_SCHEDULE_CATCHUP", "latest"),  # type: ignore[arg-type]
        max_catchup=int(env.get("LAMBDABUS_SCHEDULE_MAX_CATCHUP", "10")),
    )


def scheduler_for(redis: Redis, loaded: Any, *, clock: Clock | None = None,
                  policy: Policy | None = None) -> Scheduler:  # fmt: skip
    """The scheduler of a loaded template (``lambdabus dev`` and ``adapter schedule``)."""
    from adapters.template.models import ACCOUNT_ID

    from .spec import schedules_from

    specs = schedules_from(loaded)
    targets = {s.rule: Target(s.function, loaded.stack.functions[s.function].triggers[s.event])
               for s in specs}  # fmt: skip
    return Scheduler(redis, loaded.stack.name, specs, targets, region=loaded.region,
                     account=ACCOUNT_ID, clock=clock,
                     policy=policy or _policy_from_env(os.environ))  # fmt: skip
