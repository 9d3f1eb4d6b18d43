"""Due timers onto the work stream, where they are events like any other.

A Wait, a Retry back-off, a task's timeout or heartbeat and an execution's
TimeoutSeconds are members of the stack's timer set, scored by when they are due
(commands.py arms them). One script moves the due ones onto the work stream and
out of the set in one step, so each is delivered once whichever executor moves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis

from bus.keys import WorkflowKeys

log = logging.getLogger(__name__)

MOVE_DUE_TIMERS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 200)
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'ev', member)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


async def pump_due_timers(redis: Redis, keys: WorkflowKeys, clock: Callable[[], float],
                          poll_s: float, stopping: asyncio.Event) -> None:  # fmt: skip
    """Move due timers until ``stopping`` is set; sleep ``poll_s`` when none was due."""
    move = redis.register_script(MOVE_DUE_TIMERS)
    while not stopping.is_set():
        try:
            moved = await move(keys=[keys.timers, keys.work], args=[clock()])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("moving due timers failed (%s)", exc)
            moved = 0
        if not moved:
            await asyncio.sleep(poll_s)
