"""Worker subprocesses for the process-level tests, and helpers to await what they do.

``ProcGroup`` starts ``python -m bus.cli ... worker`` processes, reads each one's
stderr in a thread (so the pipe never fills), learns the admin port from the
``admin: http://127.0.0.1:PORT/metrics`` line, and kills every process it
started when the test ends, whatever the outcome. Use it through a fixture::

    @pytest.fixture
    def procs(redis_url):
        with ProcGroup(redis_url) as group:
            yield group
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from redis.asyncio import Redis

from bus.envelope import Envelope
from bus.publish import Publisher, Target
from bus.spec import DIRECT

ROOT = Path(__file__).resolve().parents[1]
ADMIN_LINE = re.compile(r"admin: http://127\.0\.0\.1:(\d+)/metrics")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class WorkerProc:
    """One ``lambdabus worker`` subprocess."""

    def __init__(self, argv: list[str], env: dict[str, str], label: str) -> None:
        self.label = label
        self.argv = argv
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C of pytest doesn't reach the workers
        )
        self.pid = self.popen.pid
        self.port: int | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._admin = threading.Event()
        self._pump = threading.Thread(target=self._read_stderr, daemon=True, name=label)
        self._pump.start()

    def _read_stderr(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            if self.port is None:
                m = ADMIN_LINE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self._admin.set()
        self._admin.set()  # EOF: wake a waiter, which then sees no port

    # -- output ------------------------------------------------------------------

    def output(self, tail: int = 60) -> str:
        with self._lock:
            return "\n".join(self._lines[-tail:])

    def _fail(self, what: str) -> AssertionError:
        return AssertionError(
            f"worker {self.label} (pid {self.pid}, exit {self.popen.poll()}): {what}\n"
            f"--- stderr ---\n{self.output()}"
        )

    # -- starting ----------------------------------------------------------------

    def wait_admin(self, timeout_s: float = START_TIMEOUT_S) -> int:
        """Block until the admin line was printed; returns the admin port."""
        if not self._admin.wait(timeout_s) or self.port is None:
            raise self._fail(f"no admin line within {timeout_s:g} s")
        return self.port

    async def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait for the admin line, then for /readyz to answer 200 (worker started)."""
        deadline = time.monotonic() + timeout_s
        await asyncio.to_thread(self.wait_admin, timeout_s)
        while True:
            status, _ = await self.aget("/readyz")
            if status == 200:
                return
            if self.popen.poll() is not None:
                raise self._fail("exited before it was ready")
            if time.monotonic() > deadline:
                raise self._fail(f"/readyz not 200 within {timeout_s:g} s (last {status})")
            await asyncio.sleep(0.05)

    # -- admin port ----------------------------------------------------------------

    def get(self, path: str) -> tuple[int, str]:
        """GET a path of the admin server; (status, body). Status 0: connection failed."""
        if self.port is None:
            raise self._fail("admin port unknown")
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError:
            return 0, ""

    async def aget(self, path: str) -> tuple[int, str]:
        return await asyncio.to_thread(self.get, path)

    async def metrics(self) -> list[Sample]:
        """Every sample of /metrics, parsed by prometheus_client's parser."""
        status, body = await self.aget("/metrics")
        if status != 200:
            raise self._fail(f"/metrics answered {status}")
        return parse_metrics(body)

    # -- stopping --------------------------------------------------------------------

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    async def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code, or None if still running after ``timeout_s``."""
        try:
            return await asyncio.to_thread(self.popen.wait, timeout_s)
        except subprocess.TimeoutExpired:
            return None

    async def kill(self) -> int:
        """SIGKILL and reap."""
        self.signal(signal.SIGKILL)
        code = await self.wait_exit(STOP_TIMEOUT_S)
        if code is None:
            raise self._fail("still alive after SIGKILL")
        return code

    async def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL; returns the exit code."""
        self.signal(signal.SIGTERM)
        code = await self.wait_exit(timeout_s)
        if code is None:
            await self.kill()
            raise self._fail(f"did not exit within {timeout_s:g} s of SIGTERM")
        return code

    def force_close(self) -> None:
        """Synchronous last resort used by the fixture: SIGKILL if alive, reap, close."""
        if self.popen.poll() is None:
            self.popen.kill()
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel ignored SIGKILL
            pass
        self._pump.join(5)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


class ProcGroup:
    """The worker subprocesses of one test; all are killed when the group closes."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.procs: list[WorkerProc] = []

    def spawn(self, stack: str, function: str, *, env: dict[str, str] | None = None,
              grace_s: float = 10.0) -> WorkerProc:  # fmt: skip
        """Start ``lambdabus worker`` for ``tests.stacks_proc:<stack>``/``function``."""
        argv = [
            sys.executable, "-m", "bus.cli", "--redis-url", self.redis_url,
            "--stack", f"tests.stacks_proc:{stack}",
            "worker", "--function", function, "--admin-port", "0", "--grace", str(grace_s),
        ]  # fmt: skip
        full_env = dict(os.environ)
        full_env.update(
            PYTHONPATH=str(ROOT),
            LAMBDABUS_INVOCATION_LOGS="0",
            TEST_REDIS_URL=self.redis_url,
            PYTHONUNBUFFERED="1",
        )
        full_env.update(env or {})
        proc = WorkerProc(argv, full_env, f"{stack}/{function}#{len(self.procs)}")
        self.procs.append(proc)
        return proc

    async def start(self, stack: str, function: str, *, env: dict[str, str] | None = None,
                    grace_s: float = 10.0) -> WorkerProc:  # fmt: skip
        """``spawn`` and wait until the worker is ready (admin line, then /readyz 200)."""
        proc = self.spawn(stack, function, env=env, grace_s=grace_s)
        await proc.wait_ready()
        return proc

    def close(self) -> None:
        for proc in self.procs:
            alive = proc.popen.poll() is None
            proc.force_close()
            # Shown by pytest only when the test failed.
            how = "killed at teardown" if alive else f"exit {proc.popen.returncode}"
            print(f"--- worker {proc.label} pid {proc.pid} ({how}) ---")
            print(proc.output())

    def __enter__(self) -> ProcGroup:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.close()


# -- metrics -------------------------------------------------------------------------


def parse_metrics(text: str) -> list[Sample]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def metric(samples: Iterable[Sample], name: str, **labels: str) -> float | None:
    """Sum of the samples named ``name`` whose labels include ``labels``; None if none."""
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None


# -- awaiting facts in Redis ------------------------------------------------------


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def read_stream(redis: Redis, key: str, n: int, timeout_s: float = 30.0,
                      ) -> list[dict[str, str]]:  # fmt: skip
    """Block (XREAD BLOCK) until stream ``key`` holds at least ``n`` entries; returns them all."""
    entries: list[dict[str, str]] = []
    last: Any = "0-0"
    deadline = time.monotonic() + timeout_s
    while len(entries) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(
                f"{key}: {len(entries)} of {n} entries after {timeout_s:g} s: {entries}"
            )
        reply = await redis.xread({key: last}, count=10_000, block=max(1, int(min(left, 1) * 1000)))
        for _, batch in reply or []:
            for entry_id, fields in batch:
                last = entry_id
                entries.append({_s(k): _s(v) for k, v in fields.items()})
    return entries


async def stream_entries(redis: Redis, key: str) -> list[dict[str, str]]:
    return [{_s(k): _s(v) for k, v in fields.items()} for _, fields in await redis.xrange(key)]


async def eventually(check: Callable[[], Awaitable[Any]], what: str,
                     timeout_s: float = 30.0, interval_s: float = 0.05) -> Any:  # fmt: skip
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} "
                                 f"(last: {last!r})")  # fmt: skip
        await asyncio.sleep(interval_s)


async def group_state(redis: Redis, stream: str, group: str = "lambdabus") -> dict[str, int]:
    """``pending`` and ``lag`` of a consumer group (zeros if the stream or group is absent)."""
    if not await redis.exists(stream):
        return {"pending": 0, "lag": 0}
    for g in await redis.xinfo_groups(stream):
        if _s(g.get("name")) == group:
            return {"pending": int(g.get("pending") or 0), "lag": int(g.get("lag") or 0)}
    return {"pending": 0, "lag": 0}


async def publish(redis: Redis, stack: str, function: str, records: list[dict[str, Any]]) -> int:
    """Publish one envelope per record (its ``id`` is the event id) to ``function``."""
    now = time.time()
    envs = [
        Envelope(
            id=str(r["id"]),
            source="test",
            type="Test",
            trigger=DIRECT.name,
            record=r,
            time=now,
            first_seen=now,
        )
        for r in records
    ]
    return await Publisher(redis, stack).publish(envs, [Target(function, DIRECT)])
