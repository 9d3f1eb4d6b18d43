"""One invocation of a function: context, START/END/REPORT, metrics, the runner."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from . import metrics
from .context import LambdaContext
from .handler import InProcessRunner, Outcome, load_handler
from .isolation import IsolatedRunner
from .logs import INVOCATION_LOG, log_end, log_start
from .runtime_env import function_arn, log_group
from .spec import FunctionSpec


class Runner(Protocol):
    def run(self, event: Any, ctx: LambdaContext) -> Awaitable[Outcome]: ...
    async def close(self) -> None: ...


def make_runner(fn: FunctionSpec) -> Runner:
    if fn.isolation == "process":
        return IsolatedRunner(fn, size=min(fn.max_concurrency, fn.threads))
    return InProcessRunner(fn, load_handler(fn))


_h = os.urandom(10).hex()
_REQUEST_PREFIX = f"{_h[:8]}-{_h[8:12]}-4{_h[13:16]}-{_h[16:20]}-"
_request_seq = itertools.count(int.from_bytes(os.urandom(4)))


def new_request_id() -> str:
    """A UUID-shaped id, unique per process and invocation, without a syscall per call."""
    return f"{_REQUEST_PREFIX}{next(_request_seq) & 0xFFFFFFFFFFFF:012x}"


class FunctionInvoker:
    """Wraps a runner with what every invocation needs, keeping per-call work O(1)."""

    def __init__(self, fn: FunctionSpec, runner: Runner, log_stream: str) -> None:
        self.fn = fn
        self.runner = runner
        self.log_stream = log_stream
        self.arn = function_arn(fn.name)
        self.log_group = log_group(fn.name)
        name = fn.name
        self.stats = metrics.function_stats(name)
        self._outcomes = self.stats.outcomes
        self._duration = self.stats.duration
        self.inflight = 0
        metrics.INFLIGHT.labels(name).set_function(lambda: self.inflight)
        self._abandoned = metrics.ABANDONED.labels(name)
        self._errors = logging.getLogger(f"lambdabus.function.{name}")

    async def invoke(self, event: Any, request_id: str) -> Outcome:
        fn = self.fn
        ctx = LambdaContext(
            aws_request_id=request_id,
            function_name=fn.name,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=fn.memory_mb,
            log_group_name=self.log_group,
            log_stream_name=self.log_stream,
            deadline_mono=time.monotonic() + fn.timeout_s,
        )
        logs_on = INVOCATION_LOG.isEnabledFor(logging.INFO)
        if logs_on:
            log_start(request_id)
        self.inflight += 1
        t0 = time.perf_counter()
        try:
            outcome = await self.runner.run(event, ctx)
        finally:
            self.inflight -= 1
        duration = time.perf_counter() - t0
        self._outcomes[outcome.status] += 1
        self._duration.observe(duration)
        if outcome.abandoned is not None:
            self._abandoned.inc()
        if outcome.error is not None:
            self._errors.error(
                "[ERROR] %s: %s RequestId: %s\n%s", outcome.error.type, outcome.error.message,
                request_id, outcome.error.text or "".join(outcome.error.stack),
            )  # fmt: skip
        if logs_on:
            log_end(request_id, duration, fn.memory_mb)
        return outcome
