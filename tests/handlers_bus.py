"""Handlers (and the probes they report to) for the bus integration tests.

Workers run in the test's process, so a handler finds its test's ``Probe`` in
``PROBES`` by ``context.function_name`` and records every call there; tests
await ``Probe.wait(...)`` instead of sleeping. Function names are unique per
test, so probes (and the process-global Prometheus metrics) never mix.

``runaway`` runs in a spawned child (process isolation): it must not need a
probe, and this module must stay cheap to import.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from bus.envelope import Envelope
from bus.spec import Stack
from bus.worker import Worker

# A slow cold start (like a handler importing a heavy library), for spawned children
# only: the test process has imported this module long before a test sets it.
_INIT_DELAY_S = float(os.environ.get("LAMBDABUS_TEST_INIT_DELAY_S") or 0)
if _INIT_DELAY_S:
    time.sleep(_INIT_DELAY_S)


class Call:
    """One invocation as the handler saw it."""

    __slots__ = ("end", "event", "n", "ok", "start", "stream")

    def __init__(self, event: Any, stream: str) -> None:
        self.n = 0
        """1-based number of this call among the function's calls."""
        self.event = event
        self.stream = stream
        self.start = time.monotonic()
        self.end: float | None = None
        self.ok: bool | None = None

    @property
    def records(self) -> list[Any]:
        """The records of a ``shape="records"`` event, or the single event as a list."""
        if isinstance(self.event, dict) and "Records" in self.event:
            return list(self.event["Records"])
        return [self.event]


class Probe:
    """Calls of one function, with knobs its handler reads."""

    def __init__(self, name: str, *, fail_first: int = 0, responses: list[Any] | None = None):
        self.name = name
        self.loop = asyncio.get_running_loop()
        self.calls: list[Call] = []
        self.fail_first = fail_first
        """The first ``fail_first`` calls of ``flaky`` raise."""
        self.responses = list(responses or [])
        """What ``partial`` returns on its first calls, in order (then None)."""
        self.gate = asyncio.Event()
        self.thread_gate = threading.Event()
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._changed = asyncio.Event()

    def begin(self, event: Any, context: Any) -> Call:
        call = Call(event, context.log_stream_name)
        with self._lock:
            self.calls.append(call)
            call.n = len(self.calls)
        self._notify()
        return call

    def finish(self, call: Call, ok: bool) -> None:
        call.end = time.monotonic()
        call.ok = ok
        self._notify()

    def _notify(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._changed.set()
        else:
            self.loop.call_soon_threadsafe(self._changed.set)

    async def wait(self, predicate: Callable[[list[Call]], bool], within: float = 10.0) -> None:
        """Until ``predicate(calls)`` holds; fails the test after ``within`` seconds."""
        deadline = time.monotonic() + within
        while True:
            self._changed.clear()
            if predicate(self.calls):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.name}: condition not met within {within}s; calls: "
                    f"{[(c.records, c.ok) for c in self.calls]}"
                )
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass

    def ok_records(self) -> list[Any]:
        """Records of successful calls, in the order the calls started."""
        return [r for c in self.calls if c.ok for r in c.records]

    def all_records(self) -> list[Any]:
        return [r for c in self.calls for r in c.records]


PROBES: dict[str, Probe] = {}


def probe(name: str, **kwargs: Any) -> Probe:
    """Register (replacing) the probe of function ``name``."""
    p = PROBES[name] = Probe(name, **kwargs)
    return p


def _probe(context: Any) -> Probe:
    return PROBES[context.function_name]


class FlakyError(RuntimeError):
    pass


def explode_on_purpose(n: int) -> None:
    """Named, so tests can find it in a dead letter's traceback."""
    raise FlakyError(f"call {n} fails on purpose")


# -- handlers -------------------------------------------------------------------


async def record(event: Any, context: Any) -> dict[str, Any]:
    p = _probe(context)
    call = p.begin(event, context)
    p.finish(call, True)
    return {"ok": True}


async def flaky(event: Any, context: Any) -> dict[str, Any]:
    """Raises on the first ``probe.fail_first`` calls, then succeeds."""
    p = _probe(context)
    call = p.begin(event, context)
    if call.n <= p.fail_first:
        p.finish(call, False)
        explode_on_purpose(call.n)
    p.finish(call, True)
    return {"ok": True, "call": call.n}


async def partial(event: Any, context: Any) -> Any:
    """Returns ``probe.responses`` one by one (a partial batch response), then None."""
    p = _probe(context)
    call = p.begin(event, context)
    response = p.responses.pop(0) if p.responses else None
    p.finish(call, True)
    return response


async def slow_async(event: Any, context: Any) -> str:
    """The first call outlives any sane Timeout (and is cancelled); later calls are quick."""
    p = _probe(context)
    call = p.begin(event, context)
    if call.n == 1:
        await asyncio.sleep(30)
    p.finish(call, True)
    return "done"


def slow_thread(event: Any, context: Any) -> str:
    """Plain def: the first call blocks until the test opens ``thread_gate`` (or 10 s)."""
    p = _probe(context)
    call = p.begin(event, context)
    if call.n == 1:
        p.thread_gate.wait(10)
        p.finish(call, False)  # abandoned: whatever it returns is discarded
        return "too late"
    p.finish(call, True)
    return "done"


def runaway(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Runs in an isolated child: writes its pid, then loops forever (first time only)."""
    pidfile = event["pidfile"]
    if os.path.exists(pidfile):
        with open(pidfile + ".2", "w") as f:
            f.write(str(os.getpid()))
        return {"pid": os.getpid()}
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(pidfile + ".tmp", pidfile)
    while True:
        time.sleep(0.01)


def pong(event: Any, context: Any) -> dict[str, int]:
    """For isolated children: answers at once."""
    return {"pid": os.getpid()}


async def gated(event: Any, context: Any) -> None:
    """Ordered test: fails every batch holding partition A's 2nd event until ``gate`` is set."""
    p = _probe(context)
    call = p.begin(event, context)
    if p.delay_s:
        await asyncio.sleep(p.delay_s)
    blocked = any(r["p"] == "A" and r["n"] == 2 for r in call.records)
    if blocked and not p.gate.is_set():
        p.finish(call, False)
        raise FlakyError("A/2 is not ready yet")
    p.finish(call, True)


async def poison(event: Any, context: Any) -> None:
    """Fails every batch that contains a record marked poison."""
    p = _probe(context)
    call = p.begin(event, context)
    if any(r.get("poison") for r in call.records):
        p.finish(call, False)
        raise FlakyError("poison record in batch")
    p.finish(call, True)


# -- helpers ----------------------------------------------------------------------


def env(event_id: str, record: Any, *, partition: str | None = None, **kw: Any) -> Envelope:
    now = time.time()
    fields: dict[str, Any] = {"time": now, "first_seen": now, **kw}
    return Envelope(
        id=event_id, source="test", type="test.event", trigger="", record=record,
        partition=partition, **fields,
    )  # fmt: skip


@asynccontextmanager
async def running(redis_url: str, stack: Stack, *functions: str,
                  **kwargs: Any) -> AsyncIterator[list[Worker]]:  # fmt: skip
    """Started workers (one per name, repeats allowed), always stopped at the end."""
    kwargs.setdefault("block_ms", 100)
    workers: list[Worker] = []
    try:
        for name in functions:
            w = Worker(redis_url, stack, name, **kwargs)
            await w.start()
            workers.append(w)
        yield workers
    finally:
        for w in workers:
            await w.stop(5)


async def wait_until(
    check: Callable[[], Awaitable[Any]], within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll ``check`` until it returns something truthy (bounded; small pauses)."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s (last: {value!r})")
        await asyncio.sleep(0.02)


def equals(fetch: Callable[[], Awaitable[Any]], expected: Any) -> Callable[[], Awaitable[bool]]:
    """A ``wait_until`` check: ``await fetch() == expected``."""

    async def check() -> bool:
        return bool(await fetch() == expected)

    return check
