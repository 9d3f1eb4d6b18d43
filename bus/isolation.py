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


def _child_main(conn: Connection, fn: FunctionSpec) -> None:
    handler = load_handler(fn)
    loop = asyncio.new_event_loop() if inspect.iscoroutinefunction(handler) else None
    while True:
        try:
            event, ctx_dict = conn.recv()
        except EOFError:
            return
        ctx = LambdaContext.from_dict(ctx_dict)
        try:
            result = loop.run_until_complete(handler(event, ctx)) if loop else handler(event, ctx)
            conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", tuple(ErrorInfo.from_exception(exc))))


class _Child:
    __slots__ = ("conn", "proc")

    def __init__(self, fn: FunctionSpec) -> None:
        parent, child = _ctx.Pipe()
        self.conn: Connection = parent
        self.proc: SpawnProcess = _ctx.Process(target=_child_main, args=(child, fn), daemon=True)
        self.proc.start()
        child.close()

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

    async def _call(self, child: _Child, event: Any, ctx: LambdaContext) -> Outcome:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        fd = child.conn.fileno()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            child.conn.send((event, ctx.as_dict()))
            try:
                async with asyncio.timeout(self.fn.timeout_s):
                    await ready
            except TimeoutError:
                return Outcome("timeout", error=timeout_error(self.fn, ctx))
            try:
                kind, value = child.conn.recv()
            except EOFError:
                code = child.proc.exitcode
                return Outcome("error", error=ErrorInfo(
                    "Runtime.ExitError", f"RequestId: {ctx.aws_request_id} Error: Runtime exited"
                    f" with error: exit status {code}", []))  # fmt: skip
        finally:
            loop.remove_reader(fd)
        if kind == "ok":
            return Outcome("success", value)
        return Outcome("error", error=ErrorInfo(*value))

    async def close(self) -> None:
        for child in self._idle:
            child.kill()
        self._idle.clear()
