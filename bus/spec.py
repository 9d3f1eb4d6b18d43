"""How a stack declares its functions and triggers: plain data, no I/O.

The SAM template loader (and tests, and the demo) build these; the bus and the
worker only ever read them. Defaults follow Lambda's.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

EventShape = Literal["records", "single"]
"""How a batch becomes a Lambda event: ``{"Records": [...]}`` or the record itself."""

PartialBatch = Literal["none", "items", "checkpoint"]
"""ReportBatchItemFailures semantics: retry only named items (SQS) or resume from
the lowest failed item (streams)."""

Isolation = Literal["thread", "process"]

ASYNC_MAX_RETRIES = 2
ASYNC_MAX_EVENT_AGE_S = 6 * 3600.0


@dataclass(frozen=True)
class Trigger:
    """One event source mapping of a function (a SAM ``Events`` entry)."""

    name: str
    batch_size: int = 1
    batching_window_s: float = 0.0
    shape: EventShape = "single"
    ordered: bool = False
    partial_batch: PartialBatch = "none"
    item_id_path: tuple[str, ...] = ()
    """Where a record keeps the id that ``batchItemFailures`` names (empty: envelope id)."""
    attempt_path: tuple[str, ...] = ()
    """Where a record reports its delivery count (SQS: ``attributes.ApproximateReceiveCount``);
    the worker writes ``attempt + 1`` there on retries. Empty: records are left alone."""
    bisect_on_error: bool = False
    max_retry_attempts: int | None = None
    """Overrides the function's retry policy; -1 retries until the record is too old."""
    max_record_age_s: float | None = None
    dedupe_window_s: float = 3600.0
    """How long an event id is remembered; should cover the source's redelivery horizon."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"trigger {self.name}: BatchSize must be >= 1")
        if self.batching_window_s < 0:
            raise ValueError(f"trigger {self.name}: MaximumBatchingWindowInSeconds < 0")
        if self.dedupe_window_s <= 0:
            raise ValueError(f"trigger {self.name}: dedupe window must be > 0")


DIRECT = Trigger(name="$direct")
"""Used for events whose trigger the function doesn't declare (e.g. Invoke API calls)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Lambda's EventInvokeConfig for asynchronous invocations, plus our backoff."""

    max_retry_attempts: int = ASYNC_MAX_RETRIES
    max_event_age_s: float = ASYNC_MAX_EVENT_AGE_S
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 120.0


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    """``module.function``, as in a SAM template's ``Handler``."""
    timeout_s: float = 3.0
    memory_mb: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    code_path: str | None = None
    """The function's code folder (SAM ``CodeUri``), first on ``sys.path``."""
    deps_path: str | None = None
    """Where ``lambdabus build`` installed its ``requirements.txt``, right after the code."""
    reserved_concurrency: int | None = None
    max_concurrency: int = 256
    """Per-process limit on concurrent invocations (batches)."""
    threads: int = 16
    """Thread pool size for plain ``def`` handlers."""
    isolation: Isolation = "thread"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    on_failure: str | None = None
    """Name of a function that receives Lambda's destination record when retries run out."""
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    visibility_timeout_s: float | None = None
    """Idle time after which a dead consumer's entries are reclaimed (default derived)."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"function {self.name}: Timeout must be > 0")
        if self.reserved_concurrency is not None and self.reserved_concurrency < 0:
            raise ValueError(f"function {self.name}: ReservedConcurrentExecutions < 0")
        if self.visibility_timeout_s is not None and self.visibility_timeout_s <= self.timeout_s:
            raise ValueError(f"function {self.name}: visibility timeout must exceed Timeout")

    def trigger(self, name: str) -> Trigger:
        return self.triggers.get(name, DIRECT)

    @property
    def reclaim_after_s(self) -> float:
        """Longer than Timeout plus the longest batching window, so live work isn't stolen."""
        if self.visibility_timeout_s is not None:
            return self.visibility_timeout_s
        window = max((t.batching_window_s for t in self.triggers.values()), default=0.0)
        return self.timeout_s + window + max(10.0, self.timeout_s)


@dataclass(frozen=True)
class Stack:
    name: str
    functions: Mapping[str, FunctionSpec]

    def function(self, name: str) -> FunctionSpec:
        try:
            return self.functions[name]
        except KeyError:
            known = ", ".join(sorted(self.functions)) or "none"
            raise KeyError(
                f"no function {name!r} in stack {self.name!r} (known: {known})"
            ) from None


def load_stack(ref: str) -> Stack:
    """Import ``module:attribute`` naming a Stack (or a callable returning one)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"stack reference {ref!r} must look like 'module:attribute'")
    obj = getattr(importlib.import_module(module_name), attr)
    stack = obj() if callable(obj) and not isinstance(obj, Stack) else obj
    if not isinstance(stack, Stack):
        raise TypeError(f"{ref} is {type(stack).__name__}, not a Stack")
    return stack
