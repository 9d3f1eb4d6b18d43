"""Pure event logic: Lambda events, ReportBatchItemFailures, retry decisions, destinations."""

from __future__ import annotations

import calendar
import json
import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bus.backoff import backoff_bound_s
from bus.envelope import Envelope
from bus.events import DeadLetter, Retry, after_failure, build_event, destination_record
from bus.events import failed_indexes as failed
from bus.handler import ErrorInfo
from bus.spec import FunctionSpec, RetryPolicy, Trigger

FAST = settings(max_examples=200, deadline=None)
NOW = 1_700_000_000.0
ITEMS = Trigger("q", batch_size=10, shape="records", partial_batch="items")
SQS = Trigger(
    "sqs", batch_size=10, shape="records", partial_batch="items", item_id_path=("messageId",)
)
CHECKPOINT = Trigger("kinesis", batch_size=10, shape="records", partial_batch="checkpoint")
ORDERED_ITEMS = Trigger("fifo", batch_size=10, shape="records", partial_batch="items", ordered=True)


def env(i: int = 0, record: Any = None, **kw: Any) -> Envelope:
    fields: dict[str, Any] = dict(
        id=f"e{i}",
        source="test",
        type="t",
        trigger="q",
        record={"n": i} if record is None else record,
        time=NOW - 10,
        first_seen=NOW - 10,
    )
    fields.update(kw)
    return Envelope(**fields)


def batch(n: int) -> list[Envelope]:
    return [env(i) for i in range(n)]


def sqs_batch(n: int) -> list[Envelope]:
    return [env(i, record={"messageId": f"msg-{i}", "body": str(i)}) for i in range(n)]


def fails(*ids: Any) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}


# -- build_event -----------------------------------------------------------------------


def test_records_shape_wraps_all_records_in_order() -> None:
    envs = [env(i, record={"body": f"b{i}"}) for i in range(3)]
    assert build_event("records", envs) == {
        "Records": [{"body": "b0"}, {"body": "b1"}, {"body": "b2"}]
    }


def test_records_shape_with_one_record() -> None:
    assert build_event("records", [env(0, record="x")]) == {"Records": ["x"]}


def test_single_shape_is_the_record_itself() -> None:
    record = {"detail-type": "OrderPlaced", "detail": {"id": 1}}
    assert build_event("single", [env(0, record=record)]) is record


@pytest.mark.parametrize("record", [None, 0, "text", [1, 2], {"Records": []}])
def test_single_shape_passes_any_record_through(record: Any) -> None:
    e = env(0)._replace(record=record)
    assert build_event("single", [e]) == record


# -- failed_indexes: success -----------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"statusCode": 200}],
    ids=["none", "empty-dict", "empty-list", "null-list", "unrelated-dict"],
)
@pytest.mark.parametrize("trigger", [ITEMS, SQS, CHECKPOINT, ORDERED_ITEMS], ids=lambda t: t.name)
def test_success_responses_fail_nothing(response: Any, trigger: Trigger) -> None:
    assert failed(response, sqs_batch(4), trigger) == []


# -- failed_indexes: items semantics -----------------------------------------------------


def test_items_retries_only_named_envelope_ids() -> None:
    assert failed(fails("e1"), batch(4), ITEMS) == [1]
    assert failed(fails("e3", "e0"), batch(4), ITEMS) == [0, 3]


def test_items_with_duplicate_names_counts_each_once() -> None:
    assert failed(fails("e2", "e2", "e2"), batch(4), ITEMS) == [2]


def test_items_with_item_id_path_uses_the_record_field() -> None:
    envs = sqs_batch(5)
    assert failed(fails("msg-4", "msg-1"), envs, SQS) == [1, 4]


def test_item_id_path_ignores_envelope_ids() -> None:
    # "e1" is an envelope id, but the trigger names items by record messageId.
    assert failed(fails("e1"), sqs_batch(3), SQS) == [0, 1, 2]


def test_envelope_id_trigger_ignores_record_fields() -> None:
    assert failed(fails("msg-1"), sqs_batch(3), ITEMS) == [0, 1, 2]


def test_nested_item_id_path() -> None:
    trigger = Trigger("ddb", shape="records", partial_batch="items",
                      item_id_path=("dynamodb", "SequenceNumber"))  # fmt: skip
    envs = [env(i, record={"dynamodb": {"SequenceNumber": f"{100 + i}"}}) for i in range(3)]
    assert failed(fails("101"), envs, trigger) == [1]


@FAST
@given(n=st.integers(min_value=1, max_value=12), data=st.data())
def test_items_property_exactly_the_named_subset(n: int, data: st.DataObject) -> None:
    named = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
    assert failed(fails(*[f"msg-{i}" for i in named]), sqs_batch(n), SQS) == sorted(set(named))
    assert failed(fails(*[f"e{i}" for i in named]), batch(n), ITEMS) == sorted(set(named))


# -- failed_indexes: checkpoint semantics ------------------------------------------------


def test_checkpoint_retries_everything_from_the_lowest_failed_item() -> None:
    assert failed(fails("e2"), batch(5), CHECKPOINT) == [2, 3, 4]
    assert failed(fails("e3", "e1"), batch(5), CHECKPOINT) == [1, 2, 3, 4]
    assert failed(fails("e0"), batch(5), CHECKPOINT) == [0, 1, 2, 3, 4]
    assert failed(fails("e4"), batch(5), CHECKPOINT) == [4]


def test_ordered_trigger_uses_checkpoint_semantics_even_with_items() -> None:
    assert failed(fails("e2"), batch(5), ORDERED_ITEMS) == [2, 3, 4]


def test_checkpoint_with_item_id_path() -> None:
    trigger = Trigger("k", shape="records", partial_batch="checkpoint",
                      item_id_path=("kinesis", "sequenceNumber"))  # fmt: skip
    envs = [env(i, record={"kinesis": {"sequenceNumber": f"seq{i}"}}) for i in range(4)]
    assert failed(fails("seq1"), envs, trigger) == [1, 2, 3]


@FAST
@given(n=st.integers(min_value=1, max_value=12), data=st.data())
def test_checkpoint_property_suffix_from_min(n: int, data: st.DataObject) -> None:
    named = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n))
    assert failed(fails(*[f"e{i}" for i in named]), batch(n), CHECKPOINT) == list(
        range(min(named), n)
    )


# -- failed_indexes: invalid responses fail the whole batch ------------------------------


@pytest.mark.parametrize(
    "response",
    [
        fails(None),
        fails(""),
        fails("nope"),
        fails("e1", None),
        fails("e1", ""),
        fails("e1", "e99"),
        {"batchItemFailures": [{"itemidentifier": "e1"}]},  # wrong key name
        {"batchItemFailures": [{}]},
        {"batchItemFailures": ["e1"]},  # item not an object
        {"batchItemFailures": [None]},
    ],
    ids=[
        "null-id",
        "empty-id",
        "unknown-id",
        "valid-and-null",
        "valid-and-empty",
        "valid-and-unknown",
        "bad-key-name",
        "empty-item",
        "bare-string-item",
        "null-item",
    ],
)
@pytest.mark.parametrize("trigger", [ITEMS, CHECKPOINT], ids=lambda t: t.name)
def test_invalid_identifiers_fail_the_whole_batch(response: Any, trigger: Trigger) -> None:
    assert failed(response, batch(4), trigger) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    "response",
    ["ok", "", 0, 1, True, ["e1"], [], ("e1",), 3.5],
    ids=["str", "empty-str", "zero", "one", "true", "list", "empty-list", "tuple", "float"],
)
def test_non_dict_response_fails_the_whole_batch(response: Any) -> None:
    assert failed(response, batch(3), ITEMS) == [0, 1, 2]


@pytest.mark.parametrize(
    "value",
    ["e1", {"itemIdentifier": "e1"}, 5, True, ("e1",), "", 0, False, {}],
    ids=["str", "dict", "int", "true", "tuple", "empty-str", "zero", "false", "empty-dict"],
)
def test_batch_item_failures_not_a_list_fails_the_whole_batch(value: Any) -> None:
    assert failed({"batchItemFailures": value}, batch(3), ITEMS) == [0, 1, 2]


@pytest.mark.parametrize("ident", [["e1"], {"id": "e1"}], ids=["list", "dict"])
def test_unhashable_identifier_fails_the_whole_batch(ident: Any) -> None:
    # A handler's response is arbitrary JSON; a non-string identifier is invalid, and must
    # fail the batch rather than raise out of the worker's batch task.
    assert failed(fails(ident), batch(3), ITEMS) == [0, 1, 2]


def test_record_with_unhashable_id_field_does_not_break_naming_the_others() -> None:
    # Records come from producers: one whose messageId is an object can't be named, but the
    # batch's other items still can.
    envs = [env(0, record={"messageId": ["m0"]}), env(1, record={"messageId": "m1"})]
    assert failed(fails("m1"), envs, SQS) == [1]


def test_records_without_the_id_field_cannot_be_named() -> None:
    envs = [env(0, record={"messageId": "m0"}), env(1, record="not-a-dict"), env(2, record={})]
    assert failed(fails("m0"), envs, SQS) == [0]
    assert failed(fails(None), envs, SQS) == [0, 1, 2]


# -- after_failure -------------------------------------------------------------------


def spec(retry: RetryPolicy | None = None, **triggers: Trigger) -> FunctionSpec:
    return FunctionSpec("fn", "mod.handler", retry=retry or RetryPolicy(), triggers=triggers)


@pytest.mark.parametrize(("attempt", "retry"), [(0, True), (1, True), (2, False), (9, False)])
def test_default_policy_retries_twice(attempt: int, retry: bool) -> None:
    decision = after_failure(env(attempt=attempt), spec(), ITEMS, NOW)
    if retry:
        assert isinstance(decision, Retry)
    else:
        assert decision == DeadLetter("RetriesExhausted")


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_function_retry_limit(limit: int) -> None:
    fn = spec(RetryPolicy(max_retry_attempts=limit))
    for attempt in range(limit):
        assert isinstance(after_failure(env(attempt=attempt), fn, ITEMS, NOW), Retry)
    assert after_failure(env(attempt=limit), fn, ITEMS, NOW) == DeadLetter("RetriesExhausted")


def test_trigger_retry_limit_overrides_the_function() -> None:
    fn = spec(RetryPolicy(max_retry_attempts=2))
    more = Trigger("more", max_retry_attempts=5)
    assert isinstance(after_failure(env(attempt=4), fn, more, NOW), Retry)
    assert after_failure(env(attempt=5), fn, more, NOW) == DeadLetter("RetriesExhausted")
    none = Trigger("none", max_retry_attempts=0)  # 0 is a limit, not "unset"
    assert after_failure(env(attempt=0), fn, none, NOW) == DeadLetter("RetriesExhausted")


@pytest.mark.parametrize("attempt", [0, 3, 1000, 2**40])
def test_minus_one_retries_forever(attempt: int) -> None:
    fn = spec(RetryPolicy(max_retry_attempts=-1))
    assert isinstance(after_failure(env(attempt=attempt), fn, ITEMS, NOW), Retry)
    trig = Trigger("forever", max_retry_attempts=-1)
    assert isinstance(after_failure(env(attempt=attempt), spec(), trig, NOW), Retry)


def test_too_old_events_are_dead_lettered() -> None:
    fn = spec(RetryPolicy(max_event_age_s=60.0, max_retry_attempts=-1))
    assert isinstance(after_failure(env(first_seen=NOW - 59.9), fn, ITEMS, NOW), Retry)
    assert after_failure(env(first_seen=NOW - 60.0), fn, ITEMS, NOW) == DeadLetter(
        "EventAgeExceeded"
    )
    assert after_failure(env(first_seen=NOW - 3600), fn, ITEMS, NOW) == DeadLetter(
        "EventAgeExceeded"
    )


def test_age_counts_from_first_seen_not_event_time() -> None:
    fn = spec(RetryPolicy(max_event_age_s=60.0))
    old_source_time = env(time=NOW - 10_000, first_seen=NOW - 5)
    assert isinstance(after_failure(old_source_time, fn, ITEMS, NOW), Retry)


def test_age_falls_back_to_event_time_without_first_seen() -> None:
    fn = spec(RetryPolicy(max_event_age_s=60.0))
    assert after_failure(env(time=NOW - 61, first_seen=0.0), fn, ITEMS, NOW) == DeadLetter(
        "EventAgeExceeded"
    )
    assert isinstance(after_failure(env(time=NOW - 30, first_seen=0.0), fn, ITEMS, NOW), Retry)


def test_trigger_record_age_overrides_the_function() -> None:
    fn = spec(RetryPolicy(max_event_age_s=21600.0))
    trig = Trigger("young", max_record_age_s=30.0)
    assert after_failure(env(first_seen=NOW - 31), fn, trig, NOW) == DeadLetter("EventAgeExceeded")
    assert isinstance(after_failure(env(first_seen=NOW - 31), fn, ITEMS, NOW), Retry)


def test_default_now_is_the_clock() -> None:
    fn = spec(RetryPolicy(max_event_age_s=60.0))
    now = time.time()
    assert after_failure(env(first_seen=now - 120), fn, ITEMS) == DeadLetter("EventAgeExceeded")
    assert isinstance(after_failure(env(first_seen=now - 1), fn, ITEMS), Retry)


@FAST
@given(
    attempt=st.integers(min_value=0, max_value=100),
    base=st.floats(min_value=0.01, max_value=5.0),
    cap=st.floats(min_value=0.01, max_value=600.0),
)
def test_retry_delay_is_within_the_bound_of_the_next_attempt(
    attempt: int, base: float, cap: float
) -> None:
    fn = spec(RetryPolicy(max_retry_attempts=-1, backoff_base_s=base, backoff_cap_s=cap))
    decision = after_failure(env(attempt=attempt), fn, ITEMS, NOW)
    assert isinstance(decision, Retry)
    assert 0.0 <= decision.delay_s <= backoff_bound_s(attempt + 1, base, cap)


def test_retry_delay_uses_attempt_plus_one() -> None:
    fn = spec(RetryPolicy(max_retry_attempts=-1, backoff_base_s=1.0, backoff_cap_s=1000.0))
    first = [after_failure(env(attempt=0), fn, ITEMS, NOW).delay_s for _ in range(300)]
    assert max(first) <= 1.0 and max(first) > 0.0  # bound(1) = base, not bound(0) = 0
    fourth = [after_failure(env(attempt=3), fn, ITEMS, NOW).delay_s for _ in range(300)]
    assert max(fourth) <= 8.0 and max(fourth) > 4.0  # bound(4) = 8, not 4 or 16


# -- destination_record ----------------------------------------------------------------


def _error() -> ErrorInfo:
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        return ErrorInfo.from_exception(exc)


ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-fn"


def test_destination_record_has_lambdas_on_failure_shape() -> None:
    event = {"Records": [{"body": "x"}]}
    error = _error()
    before = time.time()
    rec = destination_record(env(attempt=2), event, ARN, "req-1", "RetriesExhausted", error)
    after = time.time()
    assert set(rec) == {
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    }
    assert rec["version"] == "1.0"
    assert rec["requestContext"] == {
        "requestId": "req-1",
        "functionArn": f"{ARN}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert rec["requestContext"]["functionArn"].endswith(":$LATEST")
    assert rec["requestPayload"] == event
    assert rec["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    payload = rec["responsePayload"]
    assert payload["errorMessage"] == "boom"
    assert payload["errorType"] == "RuntimeError"
    assert isinstance(payload["stackTrace"], list) and payload["stackTrace"]
    # Lambda's stackTrace: the frames only, as traceback.format_list gives them.
    assert all(line.startswith('  File "') for line in payload["stackTrace"])
    assert not any("Traceback" in line for line in payload["stackTrace"])
    ts = rec["timestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ts)
    stamp = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + int(ts[20:23]) / 1000
    assert before - 1.0 <= stamp <= after + 1.0
    json.dumps(rec)  # it is sent as JSON


@pytest.mark.parametrize("attempt", [0, 1, 7])
def test_invoke_count_is_attempts_plus_one(attempt: int) -> None:
    rec = destination_record(env(attempt=attempt), {}, ARN, "r", "EventAgeExceeded", None)
    assert rec["requestContext"]["approximateInvokeCount"] == attempt + 1
    assert rec["requestContext"]["condition"] == "EventAgeExceeded"


def test_destination_record_without_error_has_null_payload() -> None:
    rec = destination_record(env(), "evt", ARN, "r", "RetriesExhausted", None)
    assert rec["responsePayload"] is None
    assert rec["requestPayload"] == "evt"


def test_retried_sqs_records_report_their_attempt_without_mutating_the_envelope() -> None:
    from bus.events import with_attempt

    record = {
        "messageId": "m1",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "5"},
    }
    path = ("attributes", "ApproximateReceiveCount")
    assert with_attempt(record, 0, path) is record
    retried = with_attempt(record, 2, path)
    assert retried["attributes"] == {"ApproximateReceiveCount": "3", "SentTimestamp": "5"}
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    envs = [
        Envelope(id="m1", source="s", type="t", trigger="q", record=record, time=0.0, attempt=1)
    ]
    event = build_event("records", envs, path)
    assert event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
