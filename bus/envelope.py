"""The envelope: one immutable record per source event, and its msgpack codec.

The wire form is a msgpack array whose first element is the codec version, so a
worker can reject entries written by a future or foreign producer with a clear
error instead of guessing. Arrays beat maps here: no key strings on the wire
and no dict building per event on the hot path.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import msgpack

VERSION = 1
MAX_ENTRY_BYTES = 8 * 1024 * 1024
"""Largest encoded envelope accepted; bounds what a hostile producer can make us allocate."""


class UndecodableEntry(ValueError):
    """A stream entry that is not an envelope this version understands."""


class Envelope(NamedTuple):
    """One source event on its way to one function (see DESIGN.md, "The envelope").

    A NamedTuple: immutable, and several times cheaper to build than a frozen
    dataclass, which matters at tens of thousands of events per second.
    """

    id: str
    source: str
    type: str
    trigger: str
    record: Any
    time: float
    """Source event time, seconds since the epoch."""
    subject: str | None = None
    partition: str | None = None
    attempt: int = 0
    """0 on the first delivery; each retry or reclaim adds one."""
    first_seen: float = 0.0
    deadline: float | None = None
    """Epoch seconds after which a synchronous caller no longer waits."""
    reply_to: str | None = None
    traceparent: str | None = None

    def next_attempt(self, attempts: int = 1) -> Envelope:
        return self._replace(attempt=self.attempt + attempts)


KEEP_PACKER_BYTES = 1 << 20
"""A Packer that packed more than this is dropped: its buffer only ever grows."""

_packers = threading.local()


def _new_packer() -> msgpack.Packer:
    packer = _packers.packer = msgpack.Packer(use_bin_type=True, datetime=False)
    return packer


def packb(obj: Any) -> bytes:
    """``msgpack.packb(obj, use_bin_type=True)`` without making and freeing a Packer and
    its buffer per call: one Packer per thread, replaced after a big object (or a
    failure partway) so that a one-off 6 MB reply isn't held for the process's life."""
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _new_packer()
    try:
        out: bytes = packer.pack(obj)
    except BaseException:
        _new_packer()
        raise
    if len(out) > KEEP_PACKER_BYTES:
        _new_packer()
    return out


def encode(env: Envelope) -> bytes:
    """Serialize an envelope; raises TypeError, OverflowError or UnicodeEncodeError
    for records msgpack can't carry (objects, ints >= 2**64, lone surrogates)."""
    return packb((VERSION, *env))


_FIELDS = 13
_OPTIONAL_STR = (7, 8, 12, 13)
"""Wire positions of subject, partition, reply_to and traceparent."""


def decode(data: bytes) -> Envelope:
    """Parse an entry; any malformed input raises UndecodableEntry, never something else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UndecodableEntry(f"entry payload is {type(data).__name__}, not bytes")
    if len(data) > MAX_ENTRY_BYTES:
        raise UndecodableEntry(f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise UndecodableEntry(f"not msgpack: {exc}") from None
    if not isinstance(obj, list) or not obj:
        raise UndecodableEntry("not an envelope array")
    if obj[0] != VERSION:
        raise UndecodableEntry(f"unsupported envelope version {obj[0]!r}")
    if len(obj) != _FIELDS + 1:
        raise UndecodableEntry(f"envelope has {len(obj) - 1} fields, expected {_FIELDS}")
    # Field order of Envelope matches the wire array, so construction is positional.
    if not (type(obj[1]) is str and type(obj[2]) is str and type(obj[3]) is str
            and type(obj[4]) is str):  # fmt: skip
        raise UndecodableEntry("envelope id/source/type/trigger must be strings")
    if type(obj[9]) is not int or not isinstance(obj[6], int | float):
        raise UndecodableEntry("envelope attempt/time have wrong types")
    for i in _OPTIONAL_STR:
        if obj[i] is not None and type(obj[i]) is not str:
            raise UndecodableEntry(f"envelope {Envelope._fields[i - 1]} must be a string")
    if type(obj[10]) is bool or not isinstance(obj[10], int | float):
        raise UndecodableEntry("envelope first_seen must be a number")
    if obj[11] is not None and (type(obj[11]) is bool or not isinstance(obj[11], int | float)):
        raise UndecodableEntry("envelope deadline must be a number")
    return Envelope(*obj[1:])
