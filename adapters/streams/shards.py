"""Shard lineage and where to start reading: pure decisions, no I/O.

DynamoDB Streams closes a shard about every four hours and opens one or two
children (``ParentShardId``); an item's changes continue in a child, so a child
may only be read once its parent was read to the end (checkpoint
:data:`SHARD_END`). A parent that is no longer listed (trimmed after 24 hours)
counts as finished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SHARD_END = "SHARD_END"
"""Checkpoint of a shard read to its end (closed and drained)."""
STARTING_POSITIONS = frozenset({"TRIM_HORIZON", "LATEST"})
"""What DynamoDB Streams supports (AT_TIMESTAMP is Kinesis-only)."""


class MalformedShard(ValueError):
    pass


@dataclass(frozen=True)
class Shard:
    id: str
    parent: str | None
    starting: str
    """StartingSequenceNumber."""
    ending: str | None
    """EndingSequenceNumber: set once the shard is closed."""

    @property
    def closed(self) -> bool:
        return self.ending is not None


def parse_shard(raw: Mapping[str, Any]) -> Shard:
    """One ``Shards`` entry of DescribeStream."""
    shard_id = raw.get("ShardId")
    seq = raw.get("SequenceNumberRange")
    if not isinstance(shard_id, str) or not shard_id or not isinstance(seq, Mapping):
        raise MalformedShard(f"shard without ShardId or SequenceNumberRange: {dict(raw)!r:.200}")
    parent = raw.get("ParentShardId")
    ending = seq.get("EndingSequenceNumber")
    return Shard(
        id=shard_id,
        parent=parent if isinstance(parent, str) and parent else None,
        starting=str(seq.get("StartingSequenceNumber") or ""),
        ending=str(ending) if ending is not None else None,
    )


def ordered_by_lineage(shards: Iterable[Shard]) -> list[Shard]:
    """Parents before children (then by id), whatever order DescribeStream listed them in."""
    by_id = {s.id: s for s in shards}
    out: list[Shard] = []
    seen: set[str] = set()

    def visit(shard: Shard, depth: int) -> None:
        if shard.id in seen or depth > len(by_id):  # a cycle in hostile input stops here
            return
        parent = by_id.get(shard.parent) if shard.parent else None
        if parent is not None:
            visit(parent, depth + 1)
        seen.add(shard.id)
        out.append(shard)

    for shard in sorted(by_id.values(), key=lambda s: s.id):
        visit(shard, 0)
    return out


def readable(shards: Sequence[Shard], checkpoints: Mapping[str, str]) -> list[Shard]:
    """Shards a reader may take now: not finished, and their parent finished or gone."""
    listed = {s.id for s in shards}
    out = []
    for shard in ordered_by_lineage(shards):
        if checkpoints.get(shard.id) == SHARD_END:
            continue
        parent = shard.parent
        if parent and parent in listed and checkpoints.get(parent) != SHARD_END:
            continue
        out.append(shard)
    return out


@dataclass(frozen=True)
class Position:
    """Arguments of GetShardIterator."""

    type: str
    sequence: str | None = None

    def args(self) -> dict[str, str]:
        out = {"ShardIteratorType": self.type}
        if self.sequence is not None:
            out["SequenceNumber"] = self.sequence
        return out


def start_position(checkpoint: str | None) -> Position:
    """Where a reader starts a shard: after its checkpoint, else at its beginning.

    Never a LATEST iterator: it names no sequence number, so a reader that fails,
    restarts or hands over before its first record is checkpointed would take a new
    LATEST and skip what was written meanwhile. StartingPosition LATEST is instead the
    mapping's first start time, applied to the records read (:func:`latest_cut`)."""
    if checkpoint and checkpoint != SHARD_END:
        return Position("AFTER_SEQUENCE_NUMBER", checkpoint)
    return Position("TRIM_HORIZON")


def latest_cut(starting: str, initial: bool, started_s: float) -> float | None:
    """StartingPosition LATEST, made durable: records of the shards listed at the
    mapping's first start (``initial``) created before ``started_s`` are skipped (and
    checkpointed past). Shards born later are read whole, as Lambda reads them."""
    return started_s if starting == "LATEST" and initial else None


def created_since(created_s: float, cut_s: float) -> bool:
    """Was a record created at or after ``cut_s``? ApproximateCreationDateTime is rounded
    down to the second on AWS, so a whole-second time counts as the whole second: a
    record of the start's own second may be read, none after it is lost."""
    if float(created_s).is_integer():
        return created_s + 1 > cut_s
    return created_s >= cut_s


def fair_share(shards: int, readers: int) -> int:
    """How many shards one of ``readers`` replicas should hold (ceil), at least one."""
    return max(1, -(-shards // max(1, readers)))


def later(a: str, b: str) -> bool:
    """Is sequence number ``a`` after ``b``? (numeric strings of any length)"""
    try:
        return int(a) > int(b)
    except ValueError:
        return (len(a), a) > (len(b), b)
