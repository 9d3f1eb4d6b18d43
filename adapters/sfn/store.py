"""State machines and executions in Redis: the one place that reads and writes them.

An execution is one JSON document (``{"v": version, "meta": ..., "engine": ...}``)
plus its history list and an *outbox* hash of commands persisted with the
transition that produced them. ``commit`` writes all three in one MULTI guarded
by WATCH on the document, so two executors advancing the same execution can't
both win; the loser reloads and re-applies. Commands are carried out only after
their transition is committed, and removed from the outbox after, so a crash in
between re-issues them (at least once), never loses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from bus.keys import WorkflowKeys

Doc = dict[str, Any]

DONE_TTL_S = 600
"""How long the "finished" notice of an execution stays for synchronous waiters."""
RETENTION_S = 90 * 86400
"""How long a finished execution and its history are kept (AWS: 90 days)."""
WAIT_POLL_MAX_S = 0.2
"""Longest pause between two looks of a synchronous waiter at an execution's end."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Conflict(Exception):
    """Someone else committed the execution first; reload and try again."""


class ExecutionStore:
    def __init__(self, redis: Redis, stack: str) -> None:
        self.redis = redis
        self.stack = stack
        self.keys = WorkflowKeys(stack)

    # -- state machines ------------------------------------------------------------------

    async def put_machine(self, record: dict[str, Any]) -> dict[str, Any]:
        """Create a state machine, or return the existing one of that ARN."""
        created = await self.redis.hsetnx(self.keys.machines, record["arn"], dumps(record))
        if created:
            return record
        existing = await self.get_machine(record["arn"])
        return existing or record

    async def replace_machine(self, record: dict[str, Any]) -> None:
        await self.redis.hset(self.keys.machines, record["arn"], dumps(record))

    async def put_definition(self, text: str) -> str:
        """Keep a definition by content hash; running executions keep theirs even when
        their state machine is deleted or replaced."""
        digest = hashlib.sha256(text.encode()).hexdigest()
        await self.redis.hsetnx(self.keys.definitions, digest, text)
        return digest

    async def get_definition(self, digest: str) -> str | None:
        raw = await self.redis.hget(self.keys.definitions, digest)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def get_machine(self, arn: str) -> dict[str, Any] | None:
        raw = await self.redis.hget(self.keys.machines, arn)
        return json.loads(raw) if raw else None

    async def delete_machine(self, arn: str) -> None:
        await self.redis.hdel(self.keys.machines, arn)

    async def list_machines(self) -> list[dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.machines)
        return sorted((json.loads(v) for v in raw.values()), key=lambda m: m["created"])

    # -- executions ----------------------------------------------------------------------

    async def server_time(self) -> float:
        """Redis's clock: one clock for every executor, whatever their hosts' clocks say."""
        sec, usec = await self.redis.time()
        return float(sec) + float(usec) / 1e6

    async def create_execution(self, meta: dict[str, Any]) -> dict[str, Any] | None:
        """Persist a new execution and queue its start; returns the execution's meta.

        A retry (same name, same input, still RUNNING: a client whose reply was lost)
        gets the original meta and queues ``start`` again, which closes the hole of an
        API process dying between the two writes; a duplicate start changes nothing.
        None: the name is taken by a different or finished execution.
        """
        keys = self.keys.execution(meta["eid"])
        doc = {"v": 0, "meta": meta, "engine": None}
        if not await self.redis.set(keys["doc"], dumps(doc), nx=True):
            existing = await self.load(meta["eid"])
            old = (existing or {}).get("meta") or {}
            if old.get("status") != "RUNNING" or old.get("input_text") != meta["input_text"]:
                return None
            await self.enqueue(meta["eid"], {"type": "start"})
            return dict(old)
        pipe = self.redis.pipeline(transaction=False)
        for index in (self.keys.executions, self.keys.machine_executions(meta["machine_name"])):
            pipe.zadd(index, {meta["eid"]: meta["start"]})
            pipe.zremrangebyscore(index, "-inf", meta["start"] - RETENTION_S)
        pipe.xadd(self.keys.work, {"ev": dumps({"e": meta["eid"], "type": "start"})})
        await pipe.execute()
        return meta

    async def load(self, eid: str) -> Doc | None:
        raw = await self.redis.get(self.keys.execution(eid)["doc"])
        return json.loads(raw) if raw else None

    async def history(self, eid: str, start: int = 0, count: int = 1000) -> list[dict[str, Any]]:
        raw = await self.redis.lrange(self.keys.execution(eid)["history"], start,
                                      start + count - 1)  # fmt: skip
        return [json.loads(x) for x in raw]

    async def execution_ids(self, machine_name: str | None, limit: int,
                            offset: int = 0) -> list[str]:  # fmt: skip
        key = self.keys.machine_executions(machine_name) if machine_name else self.keys.executions
        raw = await self.redis.zrevrange(key, offset, offset + limit - 1)
        return [x.decode() if isinstance(x, bytes) else str(x) for x in raw]

    async def enqueue(self, eid: str, event: dict[str, Any]) -> None:
        await self.redis.xadd(self.keys.work, {"ev": dumps({"e": eid, **event})})

    async def outbox(self, eid: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.execution(eid)["outbox"])
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

    async def clear_outbox(self, eid: str, ids: list[str]) -> None:
        if ids:
            await self.redis.hdel(self.keys.execution(eid)["outbox"], *ids)

    async def commit(self, eid: str, update: Any) -> tuple[Doc, dict[str, dict[str, Any]]] | None:
        """Read-modify-write one execution under WATCH.

        ``update(doc)`` returns ``(new_doc, history, commands)`` or None for "no
        change"; the commands land in the outbox with the new document. Returns the
        committed document and the outbox entries written, or None.
        """
        keys = self.keys.execution(eid)
        at = await self.server_time()  # lets executors tell orphaned commands from fresh ones
        for _ in range(50):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys["doc"])
                    raw = await pipe.get(keys["doc"])
                    if raw is None:
                        return None
                    doc = json.loads(raw)
                    change = update(doc)
                    if change is None:
                        await pipe.unwatch()
                        return None
                    new_doc, history, commands = change
                    new_doc["v"] = doc["v"] + 1
                    out = {f"{new_doc['v']}:{i}": {**c, "at": at} for i, c in enumerate(commands)}
                    pipe.multi()
                    pipe.set(keys["doc"], dumps(new_doc))
                    if history:
                        pipe.rpush(keys["history"], *(dumps(h) for h in history))
                    if out:
                        pipe.hset(keys["outbox"], mapping={k: dumps(v) for k, v in out.items()})
                    await pipe.execute()
                    return new_doc, out
                except WatchError:
                    continue
        raise Conflict(f"execution {eid}: too many concurrent updates")

    async def mark_done(self, eid: str, status: str) -> None:
        key = self.keys.execution(eid)["done"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(key, {"s": status})
        pipe.expire(key, DONE_TTL_S)
        await pipe.execute()

    async def wait_done(self, eid: str, timeout_s: float) -> bool:
        """Wait until the execution has finished (or the timeout passed).

        Short non-blocking polls, backing off to WAIT_POLL_MAX_S: a blocking read would
        hold a connection of the caller's shared pool for the whole wait, and many
        waiting callers would starve every other user of that pool.
        """
        key = self.keys.execution(eid)["done"]
        deadline = time.monotonic() + timeout_s
        pause = 0.01
        while True:
            if await self.redis.exists(key):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, WAIT_POLL_MAX_S)
