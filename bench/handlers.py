"""No-op handlers the benchmark runs."""

from typing import Any


async def noop_async(event: Any, context: Any) -> Any:
    return event


def noop_sync(event: Any, context: Any) -> Any:
    return event
