"""Dead letters: list, show and redrive a function's dead-letter stream."""

from __future__ import annotations

import builtins
import time
from typing import Any, NamedTuple

from redis.asyncio import Redis

from .envelope import Envelope, UndecodableEntry, decode, encode
from .keys import FunctionKeys
from .scripts import Scripts


class DeadLetterEntry(NamedTuple):
    id: str
    envelope: Envelope | None
    """None when the entry was undecodable; ``raw`` then holds its bytes."""
    raw: bytes
    error_type: str
    error_message: str
    traceback: str
    reason: str
    attempts: int
    failed_at: float

    def summary(self) -> dict[str, Any]:
        env = self.envelope
        return {
            "id": self.id,
            "event_id": env.id if env else None,
            "trigger": env.trigger if env else None,
            "reason": self.reason,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.failed_at)),
        }


def _parse(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetterEntry:
    raw = fields.get(b"d", b"")
    try:
        env: Envelope | None = decode(raw)
    except UndecodableEntry:
        env = None

    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode(errors="replace")

    return DeadLetterEntry(
        id=entry_id.decode(),
        envelope=env,
        raw=raw,
        error_type=text("error_type"),
        error_message=text("error_message"),
        traceback=text("traceback"),
        reason=text("reason"),
        attempts=int(text("attempts") or 0),
        failed_at=int(text("failed_at_ms") or 0) / 1000,
    )


class DeadLetters:
    def __init__(self, redis: Redis, stack: str) -> None:
        self.redis = redis
        self.stack = stack
        self.scripts = Scripts(redis)

    async def list(
        self, function: str, count: int = 100, after: str = "-"
    ) -> builtins.list[DeadLetterEntry]:
        keys = FunctionKeys(self.stack, function)
        rows: Any = await self.redis.xrange(keys.dead_letters, min=after, count=count)
        return [_parse(i, f) for i, f in rows]

    async def show(self, function: str, letter_id: str) -> DeadLetterEntry | None:
        keys = FunctionKeys(self.stack, function)
        rows: Any = await self.redis.xrange(keys.dead_letters, min=letter_id, max=letter_id)
        return _parse(*rows[0]) if rows else None

    async def count(self, function: str) -> int:
        return int(await self.redis.xlen(FunctionKeys(self.stack, function).dead_letters))

    async def redrive(
        self, function: str, ids: builtins.list[str] | None = None
    ) -> tuple[int, int]:
        """Put letters back on the stream as fresh events (attempts reset, dedupe bypassed).

        Returns (redriven, skipped); undecodable letters are skipped and stay.
        """
        keys = FunctionKeys(self.stack, function)
        if ids is None:
            rows: Any = await self.redis.xrange(keys.dead_letters)
            letters = [_parse(i, f) for i, f in rows]
        else:
            letters = [e for i in ids if (e := await self.show(function, i)) is not None]
        args: builtins.list[Any] = []
        skipped = 0
        now = time.time()
        for letter in letters:
            if letter.envelope is None:
                skipped += 1
                continue
            fresh = letter.envelope._replace(attempt=0, first_seen=now)
            args += (letter.id, encode(fresh))
        redriven = 0
        for start in range(0, len(args), 1000):
            chunk = args[start : start + 1000]
            n = await self.scripts.redrive(keys=[keys.dead_letters, keys.stream], args=chunk)
            redriven += int(n)
        return redriven, skipped
