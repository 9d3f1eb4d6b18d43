"""Stacks run by worker subprocesses in the process-level tests.

Started as ``python -m bus.cli --stack tests.stacks_proc:NAME worker --function FN``.
Stack names are fixed: the tests' Redis database is flushed before every test.
"""

from __future__ import annotations

from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger

H = "tests.handlers_proc."

KILL = Stack(
    "pkill",
    {
        name: FunctionSpec(
            name,
            handler=H + "hang_in_victim",
            timeout_s=3.0,
            visibility_timeout_s=4.0,
            threads=32,
            retry=RetryPolicy(max_retry_attempts=retries, backoff_base_s=0.1, backoff_cap_s=0.2),
        )
        for name, retries in (("hang", 5), ("hang_r1", 1))
    },
)

SIGTERM = Stack(
    "psigterm",
    {
        name: FunctionSpec(name, handler=H + name, timeout_s=10.0, max_concurrency=2)
        for name in ("slow_async", "slow_def")
    },
)

CONCURRENCY = Stack(
    "pconc",
    {
        name: FunctionSpec(name, handler=H + name, timeout_s=5.0, reserved_concurrency=2)
        for name in ("counted_def", "counted_async")
    },
)

METRICS = Stack(
    "pmetrics",
    {
        "flaky": FunctionSpec(
            "flaky",
            handler=H + "flaky",
            timeout_s=5.0,
            retry=RetryPolicy(max_retry_attempts=1, backoff_base_s=0.01, backoff_cap_s=0.01),
        ),
        # ReservedConcurrentExecutions 0: every invocation is throttled, nothing runs.
        "frozen": FunctionSpec(
            "frozen", handler=H + "flaky", timeout_s=5.0, reserved_concurrency=0
        ),
        "frozen_ordered": FunctionSpec(
            "frozen_ordered",
            handler=H + "flaky",
            timeout_s=5.0,
            reserved_concurrency=0,
            triggers={"Stream": Trigger("Stream", ordered=True, shape="records")},
        ),
    },
)
