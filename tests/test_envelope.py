"""The envelope codec: lossless msgpack round trips, and garbage always rejected cleanly."""

from __future__ import annotations

import math
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.envelope import MAX_ENTRY_BYTES, VERSION, Envelope, UndecodableEntry, decode, encode

FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=40)
)
records = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(text, children, max_size=5),
    max_leaves=30,
)
maybe_text = st.none() | text
numbers = st.floats(allow_nan=False) | st.integers(min_value=-(2**53), max_value=2**53)


def assert_identical(a: Any, b: Any) -> None:
    """Equal *and* of the same types all the way down (``True == 1``, ``0.0 == -0.0``)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_identical(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_identical(x, y)
    elif isinstance(a, float):
        assert a == b and math.copysign(1.0, a) == math.copysign(1.0, b), (a, b)
    else:
        assert a == b


def env(**kw: Any) -> Envelope:
    base: dict[str, Any] = dict(
        id="evt-1", source="aws:sqs", type="message", trigger="Queue", record={"k": 1}, time=1.5
    )
    base.update(kw)
    return Envelope(**base)


def wire(*fields: Any) -> bytes:
    return msgpack.packb(list(fields), use_bin_type=True)


def good_fields() -> list[Any]:
    return [VERSION, *env()]


# -- round trips -----------------------------------------------------------------------


@FAST
@given(record=records)
def test_round_trip_of_any_record_is_lossless(record: Any) -> None:
    original = env(record=record)
    decoded = decode(encode(original))
    assert isinstance(decoded, Envelope)
    assert_identical(tuple(decoded), tuple(original))


@FAST
@given(
    id=text,
    source=text,
    type_=text,
    trigger=text,
    record=records,
    time=numbers,
    subject=maybe_text,
    partition=maybe_text,
    attempt=st.integers(min_value=0, max_value=2**63 - 1),
    first_seen=numbers,
    deadline=st.none() | numbers,
    reply_to=maybe_text,
    traceparent=maybe_text,
)
def test_round_trip_with_every_field_set(**kw: Any) -> None:
    kw["type"] = kw.pop("type_")
    original = Envelope(**kw)
    assert_identical(tuple(decode(encode(original))), tuple(original))


def test_round_trip_of_all_optional_fields_explicitly_set() -> None:
    original = Envelope(
        id="0e2b8a9c",
        source="aws:kinesis",
        type="record",
        trigger="Stream",
        record={"Records": [{"a": [1, 2.5, None, True, b"\x00\xff", "ünï"]}], "n": -(2**63)},
        time=1_700_000_000.125,
        subject="orders/42",
        partition="shard-0001",
        attempt=7,
        first_seen=1_699_999_999.5,
        deadline=1_700_000_030.0,
        reply_to="stack:reply:{proc-1}",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    decoded = decode(encode(original))
    assert_identical(tuple(decoded), tuple(original))
    assert decoded.record["n"] == -(2**63)


@pytest.mark.parametrize("value", [-(2**63), 2**63 - 1, 2**63, 2**64 - 1, 0, -1])
def test_64_bit_integer_boundaries_survive(value: int) -> None:
    assert decode(encode(env(record=value))).record == value


def test_bytes_and_text_stay_distinct() -> None:
    decoded = decode(encode(env(record=[b"abc", "abc"])))
    assert_identical(decoded.record, [b"abc", "abc"])


def test_bytearray_and_memoryview_inputs_decode() -> None:
    data = encode(env())
    assert decode(bytearray(data)) == env()
    assert decode(memoryview(data)) == env()


def test_encoded_form_is_a_versioned_array() -> None:
    obj = msgpack.unpackb(encode(env()), raw=False)
    assert obj[0] == VERSION
    assert len(obj) == len(Envelope._fields) + 1


# -- rejection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x93\x01", b"\xff\xfe\xfd", b"{not msgpack}\x00\xc1"],
    ids=["empty", "never-used-byte", "truncated-array", "junk", "json-ish"],
)
def test_not_msgpack_is_rejected(data: bytes) -> None:
    with pytest.raises(UndecodableEntry):
        decode(data)


@pytest.mark.parametrize(
    "obj",
    [1, "envelope", None, {"id": "x"}, [], b"raw"],
    ids=["int", "str", "nil", "map", "empty-array", "bin"],
)
def test_non_array_top_level_is_rejected(obj: Any) -> None:
    with pytest.raises(UndecodableEntry):
        decode(msgpack.packb(obj, use_bin_type=True))


@pytest.mark.parametrize("version", [0, 2, -1, "1", None, 1.5, [1]])
def test_wrong_version_is_rejected(version: Any) -> None:
    fields = good_fields()
    fields[0] = version
    with pytest.raises(UndecodableEntry, match="version"):
        decode(wire(*fields))


@pytest.mark.parametrize("count", [0, 1, 6, 12, 14, 20])
def test_wrong_field_count_is_rejected(count: int) -> None:
    fields = (list(env()) + ["extra"] * 20)[:count]
    with pytest.raises(UndecodableEntry):
        decode(wire(VERSION, *fields))


REQUIRED_BAD_TYPES = [
    ("id", 5),
    ("id", None),
    ("id", b"bytes-id"),
    ("source", None),
    ("type", 1.0),
    ("trigger", ["Queue"]),
    ("time", "yesterday"),
    ("time", None),
    ("attempt", "0"),
    ("attempt", 1.0),
    ("attempt", None),
    ("attempt", True),
]


@pytest.mark.parametrize(("field", "value"), REQUIRED_BAD_TYPES)
def test_wrong_types_of_required_fields_are_rejected(field: str, value: Any) -> None:
    fields = good_fields()
    fields[1 + Envelope._fields.index(field)] = value
    with pytest.raises(UndecodableEntry):
        decode(wire(*fields))


# These fields are read by the worker without further checks: `deadline` is compared with
# time.time() on the sync path (bus/worker.py _dispatch_sync), `first_seen` is subtracted
# from the clock (bus/events.py after_failure, bus/ordered.py), `reply_to` becomes a Redis
# key. A wrongly typed one must be rejected at decode time, as UndecodableEntry, instead of
# raising TypeError later outside the decode error handling.
OPTIONAL_BAD_TYPES = [
    ("subject", 5),
    ("partition", ["p"]),
    ("first_seen", "x"),
    ("first_seen", None),
    ("deadline", "soon"),
    ("reply_to", 17),
    ("traceparent", {"t": 1}),
]


@pytest.mark.parametrize(("field", "value"), OPTIONAL_BAD_TYPES)
def test_wrong_types_of_optional_fields_are_rejected(field: str, value: Any) -> None:
    fields = good_fields()
    fields[1 + Envelope._fields.index(field)] = value
    with pytest.raises(UndecodableEntry):
        decode(wire(*fields))


@pytest.mark.parametrize("data", ["text", None, 42, [1, 2], object()])
def test_non_bytes_input_is_rejected(data: Any) -> None:
    with pytest.raises(UndecodableEntry, match="not bytes"):
        decode(data)


def test_oversize_entry_is_rejected_before_parsing() -> None:
    data = b"\xc1" * (MAX_ENTRY_BYTES + 1)  # would be "not msgpack" if it were parsed
    with pytest.raises(UndecodableEntry, match="exceeds"):
        decode(data)


def test_entry_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    probe = 100_000  # bin32 header either way, so the overhead is constant
    overhead = len(encode(env(record=b"x" * probe))) - probe
    exact = encode(env(record=b"x" * (MAX_ENTRY_BYTES - overhead)))
    assert len(exact) == MAX_ENTRY_BYTES
    assert len(decode(exact).record) == MAX_ENTRY_BYTES - overhead
    over = encode(env(record=b"x" * (MAX_ENTRY_BYTES - overhead + 1)))
    with pytest.raises(UndecodableEntry, match="exceeds"):
        decode(over)


@pytest.mark.parametrize(
    "data",
    [
        b"\x91" * 200_000 + b"\xc0",  # arrays nested 200k deep
        b"\x81\xa1k" * 100_000 + b"\xc0",  # maps nested 100k deep
        b"\xdd\xff\xff\xff\xff",  # array32 claiming 4G elements
        b"\xdf\xff\xff\xff\xff",  # map32 claiming 4G pairs
        b"\xdb\xff\xff\xff\xff",  # str32 claiming 4 GiB
        b"\xc6\xff\xff\xff\xff",  # bin32 claiming 4 GiB
        b"\x9e\x01" + b"\x91" * 100_000 + b"\xc0",  # envelope-looking, bomb inside
    ],
    ids=["deep-arrays", "deep-maps", "huge-array", "huge-map", "huge-str", "huge-bin", "bomb"],
)
def test_bomb_like_inputs_are_rejected(data: bytes) -> None:
    with pytest.raises(UndecodableEntry):
        decode(data)


@FAST
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_undecodable(data: bytes) -> None:
    try:
        result = decode(data)
    except UndecodableEntry:
        return
    assert isinstance(result, Envelope)


@settings(FAST, max_examples=150)
@given(
    fields=st.lists(scalars | st.lists(scalars, max_size=3), min_size=12, max_size=15),
    version=st.sampled_from([VERSION, VERSION, 0, 2, "1"]),
)
def test_envelope_shaped_garbage_never_raises_anything_but_undecodable(
    fields: list[Any], version: Any
) -> None:
    try:
        result = decode(wire(version, *fields))
    except UndecodableEntry:
        return
    assert isinstance(result, Envelope)


@FAST
@given(data=st.binary(min_size=1, max_size=60), cut=st.integers(min_value=0, max_value=200))
def test_corrupted_valid_entries_never_raise_anything_but_undecodable(
    data: bytes, cut: int
) -> None:
    good = encode(env(record=data))
    mangled = good[: cut % len(good)] + data
    try:
        result = decode(mangled)
    except UndecodableEntry:
        return
    assert isinstance(result, Envelope)


def test_packb_is_msgpacks_and_drops_a_packer_grown_big_or_failed() -> None:
    import threading

    from bus import envelope

    obj = {"a": [1, 2.5, "é", b"\x00"], "n": 2**63}
    assert envelope.packb(obj) == msgpack.packb(obj, use_bin_type=True)
    kept = envelope._packers.packer
    envelope.packb("small")
    assert envelope._packers.packer is kept
    big = b"x" * (envelope.KEEP_PACKER_BYTES + 1)
    assert msgpack.unpackb(envelope.packb(big)) == big
    assert envelope._packers.packer is not kept  # its buffer grew past the bound
    grown = envelope._packers.packer
    with pytest.raises(TypeError):
        envelope.packb({"ok": 1, "bad": object()})
    assert envelope._packers.packer is not grown
    assert envelope.packb(obj) == msgpack.packb(obj, use_bin_type=True)  # nothing left over
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(envelope._packers.__dict__.get("packer")))
    thread.start()
    thread.join()
    assert other == [None]  # each thread packs with a Packer of its own
