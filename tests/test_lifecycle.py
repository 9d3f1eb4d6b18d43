"""bus/lifecycle.serve in-process: startup, a stop signal, shutdown."""

from __future__ import annotations

import asyncio
import gc
import os
import signal

from bus.lifecycle import serve


async def test_serve_freezes_what_startup_made_until_it_stops() -> None:
    """What startup made is out of the collector's sight while serving (full collections
    would walk it all), and given back when serve returns to an in-process caller."""
    made: list[object] = []
    started = asyncio.Event()

    async def startup() -> None:
        made.extend({"startup": i} for i in range(1000))
        started.set()  # serve goes on to freeze and print ready before this test resumes

    async def shutdown(grace_s: float) -> bool:
        return True

    assert gc.get_freeze_count() == 0
    serving = asyncio.create_task(serve(startup, shutdown, lambda: True, grace_s=1))
    await asyncio.wait_for(started.wait(), 30)
    assert gc.get_freeze_count() >= len(made)
    os.kill(os.getpid(), signal.SIGTERM)  # serve's handler turns it into a stop
    assert await asyncio.wait_for(serving, 30) == 0
    assert gc.get_freeze_count() == 0


async def test_serve_gives_the_heap_back_when_cancelled() -> None:
    started = asyncio.Event()

    async def startup() -> None:
        started.set()

    async def shutdown(grace_s: float) -> bool:
        return True

    serving = asyncio.create_task(serve(startup, shutdown, lambda: True, grace_s=1))
    await asyncio.wait_for(started.wait(), 30)  # serve froze the heap before we resume
    assert gc.get_freeze_count() > 0
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    assert gc.get_freeze_count() == 0
