"""Every Redis key lambdabus uses is built here, and only here.

Keys start with the stack's name so several stacks can share one Redis, and all
keys of one function carry the same hash tag (``{function}``) so Redis Cluster
puts them on one shard and a per-function Lua script stays atomic.
"""

from __future__ import annotations

import hashlib

GROUP = "lambdabus"
"""The one consumer group on every function stream."""


def partition_hash(partition: str) -> str:
    """A short, key-safe name for an ordering key of any length or content."""
    return hashlib.blake2b(partition.encode(), digest_size=10).hexdigest()


class FunctionKeys:
    """Key names of one function of one stack."""

    __slots__ = (
        "concurrency",
        "dead_letters",
        "delayed",
        "function",
        "partitions",
        "prefix",
        "seen",
        "stack",
        "stream",
        "sync",
        "workers",
    )

    def __init__(self, stack: str, function: str) -> None:
        if not stack or not function or any(c in stack + function for c in "{}"):
            raise ValueError(f"invalid stack/function name: {stack!r}/{function!r}")
        self.stack = stack
        self.function = function
        self.prefix = f"{stack}:{{{function}}}"
        self.stream = f"{self.prefix}:stream"
        self.sync = f"{self.prefix}:sync"
        self.seen = f"{self.prefix}:seen"
        self.delayed = f"{self.prefix}:delayed"
        self.dead_letters = f"{self.prefix}:dlq"
        self.concurrency = f"{self.prefix}:leases"
        self.partitions = f"{self.prefix}:partitions"
        self.workers = f"{self.prefix}:workers"

    def partition_stream(self, phash: str) -> str:
        return f"{self.prefix}:p:{phash}"

    def partition_lease(self, phash: str) -> str:
        return f"{self.prefix}:plock:{phash}"

    def partition_state(self) -> str:
        return f"{self.prefix}:pstate"

    @property
    def dlq_forwarded(self) -> str:
        """How far the dead-letter forwarder got (adapters/destinations.py)."""
        return f"{self.prefix}:dlq-forwarded"

    @property
    def dlq_forwarder_lease(self) -> str:
        return f"{self.prefix}:dlq-forwarder"


def reply_stream(stack: str, process_id: str) -> str:
    """The reply stream of one invoking process (its own hash tag)."""
    return f"{stack}:reply:{{{process_id}}}"
