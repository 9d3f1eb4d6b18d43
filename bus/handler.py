"""Loading a handler and running one invocation of it under its Timeout.

``async def`` handlers run on the worker's loop and are cancelled at the
Timeout. Plain ``def`` handlers run in a thread pool; a thread can't be killed,
so past the Timeout it is abandoned: its result is discarded and its slot stays
held until it returns. Functions that need a hard stop use process isolation.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, NamedTuple

from .context import LambdaContext
from .deadlines import Deadlines
from .spec import FunctionSpec

Status = Literal["success", "error", "timeout"]


_BUS_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = os.path.dirname(os.path.abspath(inspect.__file__))


_FRAME = re.compile(r'^  File "[^\n]*", line \d+, in [^\n]*\n(?:    [^\n]*\n)?', re.M)
"""One entry of a formatted traceback, as ``traceback.format_list`` writes it."""
_FRAME_FILE = re.compile(r'  File "([^\n]*)", line')


def _is_runtime_frame(filename: str) -> bool:
    """Frames of lambdabus or of the stdlib machinery (threads, asyncio) that ran the handler."""
    folder = os.path.dirname(os.path.abspath(filename))
    return folder == _BUS_DIR or folder == _STDLIB_DIR or folder.startswith(_STDLIB_DIR + os.sep)


class ErrorInfo(NamedTuple):
    type: str
    message: str
    stack: list[str]
    """Lambda's ``stackTrace``: the handler's frames only, as ``format_list`` gives them."""
    text: str = ""
    """The full traceback, for logs and dead letters."""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        frames = traceback.extract_tb(exc.__traceback__)
        while frames and _is_runtime_frame(frames[0].filename):
            frames.pop(0)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(type(exc).__name__, str(exc), traceback.format_list(frames), text)

    @classmethod
    def from_record(cls, type_: str, message: str, text: str) -> ErrorInfo:
        """Rebuild from what a dead letter keeps (type, message, full traceback): the
        handler's frames are the traceback's entries after lambdabus's own, as
        :meth:`from_exception` cuts them."""
        chunks = _FRAME.findall(text)
        while chunks and (m := _FRAME_FILE.match(chunks[0])) and _is_runtime_frame(m[1]):
            chunks.pop(0)
        return cls(type_, message, chunks, text)

    def payload(self) -> dict[str, Any]:
        """The error document Lambda returns to a synchronous caller."""
        return {"errorMessage": self.message, "errorType": self.type, "stackTrace": self.stack}


class Outcome(NamedTuple):
    status: Status
    result: Any = None
    error: ErrorInfo | None = None
    abandoned: Future[Any] | None = None
    """A thread still running past the Timeout; its slot is released when it ends."""


class HandlerLoadError(Exception):
    pass


def load_handler(fn: FunctionSpec) -> Callable[..., Any]:
    """Import ``module.function`` from the function's code folder."""
    module_name, _, attr = fn.handler.rpartition(".")
    if not module_name or not attr:
        raise HandlerLoadError(f"function {fn.name}: Handler {fn.handler!r} is not module.function")
    for path in (fn.deps_path, fn.code_path):  # code first, then its dependencies
        if path and path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = _import(fn, module_name)
    except Exception as exc:
        raise HandlerLoadError(f"function {fn.name}: cannot import {module_name!r}: {exc}") from exc
    handler = getattr(module, attr, None)
    if not callable(handler):
        raise HandlerLoadError(f"function {fn.name}: {fn.handler!r} is not a callable")
    return handler


def _import(fn: FunctionSpec, module_name: str) -> Any:
    """Import the handler's module; a top-level module file in ``CodeUri`` is loaded under
    a name of its own, so functions grouped into one process that each have an
    ``app.py`` don't get each other's code (their other modules still share names)."""
    path = Path(fn.code_path or "") / f"{module_name}.py"
    if not fn.code_path or "." in module_name or not path.is_file():
        return importlib.import_module(module_name)
    unique = f"{module_name}__lambdabus_{fn.name}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def timeout_error(fn: FunctionSpec, ctx: LambdaContext) -> ErrorInfo:
    return ErrorInfo(
        "Sandbox.Timedout",
        f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {ctx.aws_request_id} "
        f"Task timed out after {fn.timeout_s:.2f} seconds",
        [],
    )


def _thread_loop() -> None:
    """Give each handler thread an event loop of its own, idle until the handler uses it.

    Lambda runs a plain ``def`` handler on a thread where ``asyncio.get_event_loop()``
    answers; adapters such as Mangum call it and ``run_until_complete`` on the result,
    which fails on a pool thread that has no loop.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())


class InProcessRunner:
    """Runs a handler in this process: coroutine on the loop, function in a thread."""

    def __init__(self, fn: FunctionSpec, handler: Callable[..., Any]) -> None:
        self.fn = fn
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self._deadlines: Deadlines[Callable[[], None]] | None = None
        self.executor = ThreadPoolExecutor(
            max_workers=fn.threads, thread_name_prefix=fn.name, initializer=_thread_loop
        )

    def run(self, event: Any, ctx: LambdaContext) -> Coroutine[Any, Any, Outcome]:
        # Not a coroutine itself: one frame less per invocation.
        return self._run_async(event, ctx) if self.is_async else self._run_thread(event, ctx)

    async def _run_async(self, event: Any, ctx: LambdaContext) -> Outcome:
        """The handler under its timeout: what ``asyncio.timeout`` does, on a loop looked
        up once. On Python 3.11 every ``get_running_loop()`` is a getpid() system call,
        and ``asyncio.timeout`` makes two per invocation (~12% of a worker's CPU on a
        no-op handler, py-spy). The timeouts of all invocations share one loop timer
        (:mod:`.deadlines`)."""
        deadlines = self._deadlines
        if deadlines is None:
            deadlines = self._deadlines = Deadlines(
                asyncio.get_running_loop(), self.fn.timeout_s, _call
            )
        loop = deadlines.loop
        task = asyncio.current_task(loop)
        assert task is not None
        cancelling = task.cancelling()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        deadlines.add(expire)
        try:
            return Outcome("success", await self.handler(event, ctx))
        except asyncio.CancelledError as exc:
            if expired:
                expired = False  # uncancelled here, not again below
                if task.uncancel() <= cancelling:  # no other cancel request: ours alone
                    return Outcome("timeout", error=timeout_error(self.fn, ctx))
            if task.cancelling():
                raise  # the worker is being stopped
            return Outcome("error", error=ErrorInfo.from_exception(exc))  # the handler's own
        except Exception as exc:
            return Outcome("error", error=ErrorInfo.from_exception(exc))
        finally:
            deadlines.discard(expire)
            if expired:  # the handler swallowed our cancel: balance the request count
                task.uncancel()

    async def _run_thread(self, event: Any, ctx: LambdaContext) -> Outcome:
        cfut = self.executor.submit(self.handler, event, ctx)
        afut = asyncio.wrap_future(cfut)
        done, _ = await asyncio.wait((afut,), timeout=self.fn.timeout_s)
        if not done:
            if cfut.cancel():  # it never started (pool full): nothing to abandon
                return Outcome("timeout", error=timeout_error(self.fn, ctx))
            return Outcome("timeout", error=timeout_error(self.fn, ctx), abandoned=cfut)
        exc = afut.exception()
        if exc is not None:
            return Outcome("error", error=ErrorInfo.from_exception(exc))
        return Outcome("success", afut.result())

    async def close(self) -> None:
        # The deadlines stay: a handler still running (one that swallowed the stop's
        # cancel) keeps its timeout.
        self.executor.shutdown(wait=False, cancel_futures=True)


def _call(expire: Callable[[], None], _: object) -> None:
    expire()
