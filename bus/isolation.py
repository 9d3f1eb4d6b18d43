"""Process isolation: each invocation runs in a child process that is killed at the Timeout.

Children are spawned (not forked: the parent runs threads and an event loop),
kept warm between invocations like a Lambda sandbox, and replaced after a kill.
"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from .context import LambdaContext
from .handler import ErrorInfo, Outcome, load_handler, timeout_error
from .spec import FunctionSpec

_ctx = multiprocessing.get_context("spawn")


INIT_TIMEOUT_S = 10.0
"""Lambda's init phase limit: start-up and handler import don't count against Timeout."""


def _child_main(conn: Connection, fn: FunctionSpec) -> None:
    try:
        handler = load_handler(fn)
    except Exception as exc:
        # Answer every event with the import error, as Lambda's runtime does.
        error = ErrorInfo("Runtime.ImportModuleError", f"Unable to import module: {exc}", [])
        conn.send(("ready", None))
        while True:
            try:
                conn.recv()
            except (EOFError, OSError):
                return
            conn.send(("error", tuple(error)))
    conn.send(("ready", None))
    loop = asyncio.new_event_loop() if inspect.iscoroutinefunction(handler) else None
    while True:
        try:
            event, ctx_dict = conn.recv()
        except (EOFError, OSError):
            return
        ctx = LambdaContext.from_dict(ctx_dict)
        try:
            result = loop.run_until_complete(handler(event, ctx)) if loop else handler(event, ctx)
            conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", tuple(ErrorInfo.from_exception(exc))))


class _Child:
    __slots__ = ("conn", "proc", "started")

    def __init__(self, fn: FunctionSpec) -> None:
        parent, child = _ctx.Pipe()
        self.conn: Connection = parent
        self.proc: SpawnProcess = _ctx.Process(target=_child_main, args=(child, fn), daemon=True)
        self.proc.start()
        child.close()
        self.started = False

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class IsolatedRunner:
    """A pool of warm child processes, one invocation each at a time."""

    def __init__(self, fn: FunctionSpec, size: int) -> None:
        self.fn = fn
        self.size = max(1, size)
        self._idle: list[_Child] = []
        self._sem = asyncio.Semaphore(self.size)

    @property
    def child_pids(self) -> list[int]:
        return [c.proc.pid for c in self._idle if c.proc.pid is not None]

    async def run(self, event: Any, ctx: LambdaContext) -> Outcome:
        async with self._sem:
            child = self._idle.pop() if self._idle else _Child(self.fn)
            try:
                outcome = await self._call(child, event, ctx)
            except BaseException:
                child.kill()
                raise
            if outcome.status == "timeout" or not child.proc.is_alive():
                child.kill()
            else:
                self._idle.append(child)
            return outcome

    async def _receive(self, child: _Child, timeout_s: float) -> tuple[str, Any] | None:
        """The child's next message, or None if none came within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = child.conn.fileno()

        def on_readable() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            async with asyncio.timeout(timeout_s):
                await readable
        except TimeoutError:
            return None
        finally:
            loop.remove_reader(fd)
        kind, value = child.conn.recv()
        return kind, value

    def _exited(self, child: _Child, ctx: LambdaContext) -> Outcome:
        child.proc.join(timeout=1)
        return Outcome("error", error=ErrorInfo(
            "Runtime.ExitError", f"RequestId: {ctx.aws_request_id} Error: Runtime exited"
            f" with error: exit status {child.proc.exitcode}", []))  # fmt: skip

    async def _call(self, child: _Child, event: Any, ctx: LambdaContext) -> Outcome:
        try:
            if not child.started:
                if await self._receive(child, INIT_TIMEOUT_S) is None:
                    err = ErrorInfo("Runtime.InitTimeout", f"init over {INIT_TIMEOUT_S:g} s", [])
                    return Outcome("timeout", error=err)
                child.started = True
                ctx = LambdaContext.from_dict(
                    {**ctx.as_dict(), "remaining_ms": self.fn.timeout_s * 1000}
                )
            child.conn.send((event, ctx.as_dict()))
            reply = await self._receive(child, self.fn.timeout_s)
        except (EOFError, OSError):
            return self._exited(child, ctx)
        if reply is None:
            return Outcome("timeout", error=timeout_error(self.fn, ctx))
        kind, value = reply
        if kind == "ok":
            return Outcome("success", value)
        return Outcome("error", error=ErrorInfo(*value))

    async def close(self) -> None:
        for child in self._idle:
            child.kill()
        self._idle.clear()
