"""Carrying out an execution's committed commands: invokes, timers, notices.

Commands come from the outbox, where they were committed with the transition that
made them; an executor may issue them again after a crash (or adopt another's), so
each kind is safe to repeat: a request-response invoke is sent once per task token
(a mark set in the same script as the send), a callback invoke goes through the
publisher's dedupe, timers are set members, a duplicate result is ignored.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from bus.envelope import Envelope, encode
from bus.keys import FunctionKeys, WorkflowKeys
from bus.publish import Publisher, Target
from bus.spec import DIRECT

from .store import DONE_TTL_S, RETENTION_S, dumps

SOURCE = "lambdabus:states"
NO_DEADLINE_S = 366 * 86400.0
"""A Task without TimeoutSeconds waits as long as AWS lets an execution run (a year)."""
ISSUED_TTL_S = 86400
"""How long the "already issued" mark of a request-response invoke is kept."""

ISSUE_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], '*', 'd', ARGV[2])
  return 1
end
return 0
"""


class CommandIssuer:
    """Issues one stack's workflow commands (an executor holds one)."""

    def __init__(self, redis: Redis, stack: str, functions: set[str] | None) -> None:
        self.redis = redis
        self.stack = stack
        self.keys = WorkflowKeys(stack)
        self.functions = functions
        self.publisher = Publisher(redis, stack)
        self._issue_once = redis.register_script(ISSUE_ONCE)

    async def issue(self, eid: str, outbox: dict[str, dict[str, Any]]) -> None:
        """Carry out committed commands and drop them from the outbox in one pipeline.

        Redis runs a pipeline's commands in order, so the outbox entries go only after
        the writes they stand for: an executor killed before the pipeline was sent
        leaves them for the next one to issue (nothing lost). Re-issuing is harmless:
        a Task's invoke is sent once per token (a mark set with it, or the publisher's
        dedupe for callbacks), timers are set members, a duplicate result is ignored.
        """
        pipe = self.redis.pipeline(transaction=False)
        for _, cmd in sorted(outbox.items(), key=lambda kv: outbox_order(kv[0])):
            kind = cmd["type"]
            if kind == "timer":
                member = dumps({"e": eid, "type": "timer", "token": cmd["token"]})
                pipe.zadd(self.keys.timers, {member: cmd["due"]})
            elif kind == "cancel_timer":
                member = dumps({"e": eid, "type": "timer", "token": cmd["token"]})
                pipe.zrem(self.keys.timers, member)
            elif kind == "continue":
                pipe.xadd(self.keys.work, {"ev": dumps({"e": eid, "type": "continue"})})
            elif kind == "invoke":
                await self._invoke(eid, cmd, pipe)
            elif kind == "finished":
                keys = self.keys.execution(eid)
                pipe.xadd(keys["done"], {"s": cmd["status"]})
                pipe.expire(keys["done"], DONE_TTL_S)
                for key in ("doc", "history"):
                    pipe.expire(keys[key], RETENTION_S)
        if outbox:
            pipe.hdel(self.keys.execution(eid)["outbox"], *outbox)
            await pipe.execute()

    async def _invoke(self, eid: str, cmd: dict[str, Any], pipe: Any) -> None:
        function, token = cmd.get("function"), cmd["token"]
        refusal = None
        if function is None:
            refusal = ("States.Runtime", f"lambdabus runs only Lambda tasks; {cmd['resource']!r} "
                       "is not supported")  # fmt: skip
        elif self.functions is not None and function not in self.functions:
            refusal = (
                "Lambda.ResourceNotFoundException",
                f"Function not found: {function} (not a function of stack {self.stack})",
            )
        if refusal is not None:  # a duplicate of this event is ignored: its token is settled
            pipe.xadd(self.keys.work, {"ev": dumps({"e": eid, "type": "task_failed",
                      "token": token, "error": refusal[0], "cause": refusal[1]})})  # fmt: skip
            return
        now = time.time()
        assert function is not None
        if cmd.get("callback"):  # published through the dedupe script: re-issuing is harmless
            env = Envelope(id=token, source=SOURCE, type="Invoke", trigger=DIRECT.name,
                           record=cmd["payload"], time=now, first_seen=now)  # fmt: skip
            await self.publisher.publish([env], [Target(function, DIRECT)])
            return
        env = Envelope(
            id=token, source=SOURCE, type="Invoke", trigger=DIRECT.name, record=cmd["payload"],
            time=now, first_seen=now, deadline=now + (cmd.get("timeout_s") or NO_DEADLINE_S),
            reply_to=self.keys.work,
        )  # fmt: skip
        fkeys = FunctionKeys(self.stack, function)  # issued once per token, even when adopted
        await self._issue_once(keys=[fkeys.issued(token), fkeys.sync],
                               args=[ISSUED_TTL_S, encode(env)], client=pipe)  # fmt: skip


def outbox_order(key: str) -> tuple[int, ...]:
    """Outbox fields are ``<version>:<index>``: commands run in the order they were made."""
    try:
        return tuple(int(x) for x in key.split(":"))
    except ValueError:
        return (0,)
