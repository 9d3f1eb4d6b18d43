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

    def issued(self, token: str) -> str:
        """Marks a workflow task's invoke as sent, so it is sent once (adapters/sfn)."""
        return f"{self.prefix}:issued:{token}"

    @property
    def dlq_forwarded(self) -> str:
        """How far the dead-letter forwarder got (adapters/destinations.py)."""
        return f"{self.prefix}:dlq-forwarded"

    @property
    def dlq_forwarder_lease(self) -> str:
        return f"{self.prefix}:dlq-forwarder"


class StreamSourceKeys:
    """Key names of one stream event source mapping (adapters/streams): per-shard
    checkpoints and leases, the replicas reading it. One hash tag per mapping."""

    __slots__ = ("checkpoints", "failures_cursor", "failures_lease", "initial", "prefix",
                 "readers", "started")  # fmt: skip

    def __init__(self, stack: str, mapping: str) -> None:
        if not stack or not mapping or any(c in stack + mapping for c in "{}"):
            raise ValueError(f"invalid stack/mapping name: {stack!r}/{mapping!r}")
        self.prefix = f"{stack}:{{ddb:{mapping}}}"
        self.checkpoints = f"{self.prefix}:checkpoints"
        """Hash: shard id -> last published sequence number, or SHARD_END."""
        self.initial = f"{self.prefix}:initial"
        """Set once at the mapping's first start: the shards StartingPosition applies to."""
        self.started = f"{self.prefix}:started"
        """Set with ``initial``: Redis time (epoch seconds) of the first start, LATEST's cut."""
        self.readers = f"{self.prefix}:readers"
        """Sorted set: replica id -> heartbeat expiry (ms), for the fair share of shards."""
        self.failures_cursor = f"{self.prefix}:onfailure-cursor"
        self.failures_lease = f"{self.prefix}:onfailure-lease"

    def lease(self, shard_id: str) -> str:
        return f"{self.prefix}:lease:{shard_id}"


def reply_stream(stack: str, process_id: str) -> str:
    """The reply stream of one invoking process (its own hash tag)."""
    return f"{stack}:reply:{{{process_id}}}"


def schedule_claim(stack: str, rule: str, tick: int) -> str:
    """Claim on one tick of one schedule (adapters/schedule): SET NX PX, one winner.
    All keys of one schedule share its hash tag."""
    return f"{stack}:{{sched:{rule}}}:tick:{tick}"


def schedule_watermark(stack: str, rule: str) -> str:
    """Every tick of one schedule up to this time (epoch seconds) is handled; catch-up
    resumes after it."""
    return f"{stack}:{{sched:{rule}}}:handled"


DURABLE_REPLIES = ":durable"
"""Suffix of reply streams that outlive their reader (the workflow executors' work
stream): the worker must not give them a TTL, or results sent while every executor
is down would vanish with the consumer group."""


def reply_expires(reply_to: str) -> bool:
    """Does a reply stream get the short TTL of a synchronous caller's stream?"""
    return not reply_to.endswith(DURABLE_REPLIES)


class WorkflowKeys:
    """Key names of the Step Functions executors of one stack (adapters/sfn).

    The work stream and the timer set share one hash tag so the script that moves
    due timers onto the stream is atomic; each execution's own keys share another.
    """

    __slots__ = ("definitions", "executions", "machines", "prefix", "timers", "work")

    def __init__(self, stack: str) -> None:
        if not stack or any(c in stack for c in "{}"):
            raise ValueError(f"invalid stack name: {stack!r}")
        self.prefix = f"{stack}:sfn"
        self.machines = f"{self.prefix}:machines"
        self.definitions = f"{self.prefix}:definitions"
        """Hash: sha256 of a definition -> its text (immutable; executions name theirs)."""
        self.executions = f"{self.prefix}:executions"
        self.work = f"{self.prefix}:{{work}}:stream{DURABLE_REPLIES}"
        self.timers = f"{self.prefix}:{{work}}:timers"

    def machine_executions(self, machine: str) -> str:
        return f"{self.prefix}:executions:{machine}"

    def execution(self, eid: str) -> dict[str, str]:
        """doc (the engine's JSON), history (list), outbox (hash), done (stream)."""
        if not eid or any(c in eid for c in "{}"):
            raise ValueError(f"invalid execution id: {eid!r}")
        base = f"{self.prefix}:x:{{{eid}}}"
        return {k: f"{base}:{k}" for k in ("doc", "history", "outbox", "done")}
