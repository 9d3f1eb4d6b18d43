"""Process lifecycle, the same for every long-running lambdabus process.

Three visible phases (startup, run until a stop signal, shutdown with a grace
period). Signal handlers only set a flag; a second signal forces exit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from .admin import AdminServer

log = logging.getLogger(__name__)

READY_LINE = "lambdabus: ready"
"""Printed on stderr once startup finished; supervisors (``dev``, tests) wait for it."""


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - optional on exotic platforms
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def settle_heap() -> None:
    """Take what startup made out of the garbage collector's sight.

    Modules, the template, clients: a service's startup objects live as long as the
    process (hundreds of thousands of them in ``dev``, which hosts moto). Python's
    full collections traverse every tracked object, so while serving they stalled
    requests for tens of milliseconds each. Collected once, then frozen
    (``gc.freeze``, as long-running Python servers do after startup), they are
    skipped: at 128 connections the gateway's p99 went from ~50 to ~12 ms and its
    rate up 10-25% (``bench/http.py``).
    """
    gc.collect()
    gc.freeze()


async def serve(
    startup: Callable[[], Awaitable[None]],
    shutdown: Callable[[float], Awaitable[bool]],
    ready: Callable[[], bool],
    *,
    admin_port: int = 0,
    admin_host: str = "0.0.0.0",
    grace_s: float = 30.0,
) -> int:
    """Run a service until SIGTERM/SIGINT; returns the exit code (0 after a clean drain)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("received %s: draining (grace %.0f s)", signal.Signals(signum).name, grace_s)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    admin = AdminServer(ready, host=admin_host, port=admin_port)
    port = await admin.start()
    print(f"admin: http://127.0.0.1:{port}/metrics", file=sys.stderr, flush=True)
    await startup()
    settle_heap()
    try:
        print(READY_LINE, file=sys.stderr, flush=True)
        await stop.wait()
        finished = await shutdown(grace_s)
    finally:  # also when cancelled or failing, for a caller that goes on in this process
        gc.unfreeze()
        await admin.stop()
    if not finished:
        log.warning("grace period ended with work still running; it will be redelivered")
    return 0
