"""The benchmark's stack: one async and one plain no-op function."""

from bus.spec import FunctionSpec, Stack

STACK = Stack(
    "bench",
    {
        "noop_async": FunctionSpec("noop_async", "bench.handlers.noop_async", max_concurrency=512),
        "noop_sync": FunctionSpec("noop_sync", "bench.handlers.noop_sync", threads=8),
    },
)
