"""``lambdabus adapter schedule``: run the scheduler (any number of replicas), or, with
``--fire FUNCTION.EVENT``, fire one schedule's next tick now and exit — the way to run a
daily job on demand without waiting for its time (the scheduler then skips that tick)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bus.cli import UsageError

from .events import iso
from .expressions import ExpressionError
from .scheduler import scheduler_for


async def run_schedule(loaded: Any, url: str, args: argparse.Namespace) -> int:
    from bus.lifecycle import serve
    from bus.redis_conn import connect

    redis = connect(url)
    try:
        try:
            scheduler = scheduler_for(redis, loaded)
        except (ExpressionError, ValueError) as exc:
            raise UsageError(f"{loaded.path}: {exc}") from None
        if not scheduler.specs:
            raise UsageError(f"{loaded.path}: no Schedule or ScheduleV2 events to run")
        if args.fire:
            try:
                tick = await scheduler.fire_next(args.fire)
            except KeyError as exc:
                raise UsageError(str(exc.args[0])) from None
            if tick is None:
                raise UsageError(f"{args.fire}: no next tick, or it was already fired")
            print(json.dumps({"schedule": args.fire, "tick": iso(tick), "fired": True}))
            return 0
        return await serve(scheduler.start, scheduler.stop, lambda: scheduler.ready,
                           admin_port=args.admin_port, grace_s=args.grace)  # fmt: skip
    finally:
        await redis.aclose()
