"""Key naming (one Redis Cluster slot per function) and stack spec validation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from bus.keys import GROUP, FunctionKeys, partition_hash, reply_stream
from bus.spec import DIRECT, FunctionSpec, Stack, Trigger, load_stack

FAST = settings(max_examples=200, deadline=None)

no_braces = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="{}"), min_size=1, max_size=30
)


def all_keys(k: FunctionKeys, partitions: list[str]) -> list[str]:
    keys = [k.stream, k.sync, k.seen, k.delayed, k.dead_letters, k.concurrency, k.partitions]
    keys.append(k.partition_state())
    for p in partitions:
        ph = partition_hash(p)
        keys += [k.partition_stream(ph), k.partition_lease(ph)]
    return keys


def test_concrete_key_names() -> None:
    k = FunctionKeys("prod", "orders")
    assert k.stream == "prod:{orders}:stream"
    assert k.prefix == "prod:{orders}"
    assert len(set(all_keys(k, ["a", "b"]))) == 7 + 1 + 4  # all distinct
    assert GROUP == "lambdabus"


@FAST
@given(stack=no_braces, fn=no_braces, partitions=st.lists(st.text(max_size=20), max_size=4))
def test_every_key_of_a_function_is_in_one_cluster_slot(
    stack: str, fn: str, partitions: list[str]
) -> None:
    k = FunctionKeys(stack, fn)
    keys = all_keys(k, partitions)
    tag = "{" + fn + "}"
    expected_slot = key_slot(fn.encode())
    for key in keys:
        assert key.startswith(stack + ":"), key
        assert key.count(tag) == 1, key
        assert key_slot(key.encode()) == expected_slot, key


def test_distinct_functions_keys_do_not_collide() -> None:
    a = all_keys(FunctionKeys("s", "a"), ["p"])
    b = all_keys(FunctionKeys("s", "b"), ["p"])
    c = all_keys(FunctionKeys("t", "a"), ["p"])
    assert not set(a) & set(b)
    assert not set(a) & set(c)


@pytest.mark.parametrize("fn", ["a{b", "a}b", "{fn}", "}{", "x{y}z"])
def test_function_names_with_braces_are_rejected(fn: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        FunctionKeys("stack", fn)


@pytest.mark.parametrize(("stack", "fn"), [("", "fn"), ("stack", "")])
def test_empty_names_are_rejected(stack: str, fn: str) -> None:
    with pytest.raises(ValueError):
        FunctionKeys(stack, fn)


@FAST
@given(p=st.text(max_size=200))
def test_partition_hash_is_key_safe_and_stable(p: str) -> None:
    h = partition_hash(p)
    assert re.fullmatch(r"[0-9a-f]{20}", h)
    assert partition_hash(p) == h


def test_partition_hash_separates_partitions() -> None:
    hashes = {partition_hash(f"user-{i}") for i in range(1000)}
    assert len(hashes) == 1000


def test_reply_stream_has_its_own_hash_tag() -> None:
    key = reply_stream("prod", "proc-1")
    assert key.startswith("prod:")
    assert key_slot(key.encode()) == key_slot(b"proc-1")


# -- spec validation -------------------------------------------------------------------


def test_trigger_batch_size_zero_names_the_trigger() -> None:
    with pytest.raises(ValueError, match="OrdersQueue"):
        Trigger("OrdersQueue", batch_size=0)


def test_trigger_negative_batch_size() -> None:
    with pytest.raises(ValueError, match="BatchSize"):
        Trigger("t", batch_size=-3)


def test_trigger_negative_batching_window_names_the_trigger() -> None:
    with pytest.raises(ValueError, match="Stream"):
        Trigger("Stream", batching_window_s=-0.1)


@pytest.mark.parametrize("window", [0.0, -1.0])
def test_trigger_dedupe_window_must_be_positive(window: float) -> None:
    with pytest.raises(ValueError, match="dedupe"):
        Trigger("t", dedupe_window_s=window)


def test_valid_trigger_limits_are_accepted() -> None:
    t = Trigger("t", batch_size=1, batching_window_s=0.0)
    assert t.batch_size == 1
    assert Trigger("t", batch_size=10_000, batching_window_s=300.0).batching_window_s == 300.0


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_function_timeout_must_be_positive_and_error_names_the_function(timeout: float) -> None:
    with pytest.raises(ValueError, match="Checkout"):
        FunctionSpec("Checkout", "mod.h", timeout_s=timeout)


@pytest.mark.parametrize("visibility", [3.0, 2.9, 0.0])
def test_visibility_timeout_must_exceed_timeout(visibility: float) -> None:
    with pytest.raises(ValueError, match="Billing"):
        FunctionSpec("Billing", "mod.h", timeout_s=3.0, visibility_timeout_s=visibility)


def test_negative_reserved_concurrency_is_rejected() -> None:
    with pytest.raises(ValueError, match="Billing"):
        FunctionSpec("Billing", "mod.h", reserved_concurrency=-1)


def test_visibility_timeout_just_above_timeout_is_used() -> None:
    fn = FunctionSpec("f", "mod.h", timeout_s=3.0, visibility_timeout_s=3.5)
    assert fn.reclaim_after_s == 3.5


@settings(max_examples=200, deadline=None)
@given(
    timeout=st.floats(min_value=0.001, max_value=900.0),
    windows=st.lists(st.floats(min_value=0.0, max_value=300.0), max_size=4),
)
def test_reclaim_after_exceeds_timeout_plus_longest_window(
    timeout: float, windows: list[float]
) -> None:
    triggers = {f"t{i}": Trigger(f"t{i}", batching_window_s=w) for i, w in enumerate(windows)}
    fn = FunctionSpec("f", "mod.h", timeout_s=timeout, triggers=triggers)
    assert fn.reclaim_after_s > timeout + max(windows, default=0.0)


def test_unknown_trigger_is_direct() -> None:
    fn = FunctionSpec("f", "mod.h", triggers={"q": Trigger("q", batch_size=5)})
    assert fn.trigger("q").batch_size == 5
    assert fn.trigger("other") is DIRECT


def test_stack_function_lookup_error_lists_known_functions() -> None:
    stack = Stack("s", {"a": FunctionSpec("a", "m.h"), "b": FunctionSpec("b", "m.h")})
    assert stack.function("a").name == "a"
    with pytest.raises(KeyError, match=r"a, b"):
        stack.function("zzz")


# -- load_stack ------------------------------------------------------------------------

STACK = Stack("loaded", {"f": FunctionSpec("f", "mod.h")})
NOT_A_STACK = {"f": "mod.h"}


def make_stack() -> Stack:
    return STACK


def make_nothing() -> None:
    return None


def test_load_stack_by_attribute() -> None:
    assert load_stack(f"{__name__}:STACK") is STACK


def test_load_stack_by_factory() -> None:
    assert load_stack(f"{__name__}:make_stack") is STACK


@pytest.mark.parametrize("ref", ["", "no_colon", "module:", ":attr", ":"])
def test_load_stack_malformed_refs(ref: str) -> None:
    with pytest.raises(ValueError, match="module:attribute"):
        load_stack(ref)


def test_load_stack_missing_module() -> None:
    with pytest.raises(ModuleNotFoundError):
        load_stack("tests.no_such_module_xyz:STACK")


def test_load_stack_missing_attribute() -> None:
    with pytest.raises(AttributeError):
        load_stack(f"{__name__}:NO_SUCH_ATTR")


@pytest.mark.parametrize("attr", ["NOT_A_STACK", "make_nothing"])
def test_load_stack_rejects_non_stacks(attr: str) -> None:
    with pytest.raises(TypeError, match="not a Stack"):
        load_stack(f"{__name__}:{attr}")
