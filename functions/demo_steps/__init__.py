"""The demo's steps: one module per source, run in ``ORDER`` by ``functions.demo``.

A step module defines ``TITLE: str``, ``ORDER: int`` and ``async def run(ctx:
DemoContext) -> None``, which drives the running stack through AWS's own APIs
(aiobotocore against the edge or moto, HTTP against the API gateway) and adds
rows to ``ctx.rows``. A step that needs a local service before the stack starts
(an SMTP sink, say) also defines ``def services(stack: contextlib.ExitStack) ->
dict[str, str]``, returning template parameter overrides; what it enters on
``stack`` stops after the stack does.

Handlers report what they did on the ``demo:results`` stream of the demo's own
Redis (``DEMO_STORE_URL``): fields ``function``, ``key``, ``outcome``, ``at``.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aiobotocore.session import get_session

Row = tuple[str, str, str, str]

EDGE_SERVICES = frozenset({"lambda", "events", "stepfunctions"})
"""Clients of these talk to lambdabus's edge; every other service to the AWS endpoint."""


@dataclass
class DemoContext:
    endpoints: dict[str, str]
    """What ``lambdabus dev`` printed: ``redis``, ``aws``, ``edge``, ``api`` (if any)."""
    store: Any
    """The handlers' own Redis (redis.asyncio), where they report on ``demo:results``."""
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def client(self, service: str) -> AbstractAsyncContextManager[Any]:
        """An aiobotocore client as any SDK user would make one, pointed at the stack."""
        where = "edge" if service in EDGE_SERVICES else "aws"
        return get_session().create_client(
            service,
            endpoint_url=self.endpoints[where],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def row(self, function: str, event: str, outcome: str, latency: str = "") -> None:
        self.rows.append((function, event, outcome, latency))

    async def reports(
        self, functions: set[str], expected: int, timeout_s: float = 60
    ) -> list[dict[str, str]]:
        """Wait (XREAD BLOCK, no polling) until ``expected`` reports of ``functions`` arrived;
        each becomes a row with its latency after ``started``. Returns what arrived."""
        found: list[dict[str, str]] = []
        last = "0-0"
        deadline = time.monotonic() + timeout_s
        while len(found) < expected and time.monotonic() < deadline:
            reply = await self.store.xread({"demo:results": last}, block=500)
            for _, entries in reply.items() if isinstance(reply, dict) else reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    rep = {k.decode(): v.decode() for k, v in fields.items()}
                    if rep.get("function") in functions:
                        found.append(rep)
        for rep in found:
            ms = f"{(float(rep['at']) - self.started) * 1000:.0f} ms after start"
            self.row(rep["function"], rep["key"], rep["outcome"], ms)
        return found


def steps() -> list[ModuleType]:
    """Every step module of this package, in ``ORDER``."""
    mods = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return sorted(mods, key=lambda m: (m.ORDER, m.__name__))


@asynccontextmanager
async def timed(ctx: DemoContext, function: str, event: str) -> AsyncIterator[list[str]]:
    """Time a call and add its row; the body appends its outcome text to the yielded list."""
    out: list[str] = []
    t = time.perf_counter()
    yield out
    ctx.row(function, event, " ".join(out), f"{(time.perf_counter() - t) * 1000:.1f} ms")
