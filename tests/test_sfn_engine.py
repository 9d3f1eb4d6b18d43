"""The ASL engine as a pure transition function: each state type, Retry/Catch, timers,
intrinsics, Choice operators, JSONata — with the project's own fixtures (no ../shared)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.sfn.choice import evaluate as rule_holds
from adapters.sfn.choice import string_matches
from adapters.sfn.engine import Engine, Transition
from adapters.sfn.intrinsics import evaluate as intrinsic
from adapters.sfn.retry_catch import backoff_s
from adapters.sfn.run import run_local

T0 = 1_700_000_000.0
EXECUTION = {"Id": "arn:aws:states:us-east-1:1:execution:m:e", "Name": "e",
             "RoleArn": "r", "StartTime": "2023-11-14T22:13:20.000Z"}  # fmt: skip


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def start(defn: dict[str, Any], data: Any = None) -> tuple[Engine, Transition]:
    engine = Engine(defn, {"Id": "arn:sm", "Name": "sm"})
    return engine, engine.start({} if data is None else data, execution=EXECUTION, now=T0,
                                token_prefix="x.")  # fmt: skip


def of_type(tr: Transition, kind: str) -> list[dict[str, Any]]:
    return [c for c in tr.commands if c["type"] == kind]


def finished(tr: Transition) -> dict[str, Any]:
    (done,) = of_type(tr, "finished")
    return done


# -- state types -------------------------------------------------------------------------------


def test_pass_chain_with_result_and_paths() -> None:
    defn = machine(
        A={"Type": "Pass", "Result": {"v": 1}, "ResultPath": "$.a", "Next": "B"},
        B={"Type": "Pass", "InputPath": "$.a", "Parameters": {"w.$": "$.v", "k": "lit"},
           "OutputPath": "$.w", "End": True},
    )  # fmt: skip
    _, tr = start(defn, {"keep": True})
    assert finished(tr) == {"type": "finished", "status": "SUCCEEDED", "output": 1}
    kinds = [h["type"] for h in tr.history]
    assert kinds == ["ExecutionStarted", "PassStateEntered", "PassStateExited",
                     "PassStateEntered", "PassStateExited", "ExecutionSucceeded"]  # fmt: skip


def test_task_invokes_then_applies_result_selector_and_result_path() -> None:
    defn = machine(T={"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:fn",
                      "Parameters": {"n.$": "$.n"}, "ResultSelector": {"got.$": "$.r"},
                      "ResultPath": "$.out", "End": True})  # fmt: skip
    engine, tr = start(defn, {"n": 3})
    (call,) = of_type(tr, "invoke")
    assert (call["function"], call["payload"], call["callback"]) == ("fn", {"n": 3}, False)
    assert tr.doc["status"] == "RUNNING"
    tr = engine.step(tr.doc, {"type": "task_succeeded", "token": call["token"],
                              "result": {"r": "ok"}}, T0 + 1)  # fmt: skip
    assert finished(tr)["output"] == {"n": 3, "out": {"got": "ok"}}


def test_lambda_invoke_integration_has_aws_result_shape() -> None:
    defn = machine(T={"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "arn:aws:lambda:r:1:function:fn:$LATEST",
                                     "Payload.$": "$"}, "End": True})  # fmt: skip
    engine, tr = start(defn, {"a": 1})
    (call,) = of_type(tr, "invoke")
    assert call["function"] == "fn" and call["payload"] == {"a": 1}
    tr = engine.step(tr.doc, {"type": "task_succeeded", "token": call["token"], "result": 5}, T0)
    out = finished(tr)["output"]
    assert out["Payload"] == 5 and out["StatusCode"] == 200 and out["ExecutedVersion"] == "$LATEST"


def test_a_duplicate_or_unknown_result_changes_nothing() -> None:
    defn = machine(T={"Type": "Task", "Resource": "fn", "End": True})
    engine, tr = start(defn)
    tok = of_type(tr, "invoke")[0]["token"]
    done = engine.step(tr.doc, {"type": "task_succeeded", "token": tok, "result": 1}, T0)
    again = engine.step(done.doc, {"type": "task_succeeded", "token": tok, "result": 2}, T0)
    assert again.commands == [] and again.history == [] and again.doc["output"] == 1
    stray = engine.step(tr.doc, {"type": "task_failed", "token": "x.999", "error": "E"}, T0)
    assert stray.commands == [] and stray.doc["status"] == "RUNNING"


def test_wait_is_a_timer_not_a_sleep() -> None:
    defn = machine(W={"Type": "Wait", "Seconds": 30, "Next": "D"},
                   D={"Type": "Wait", "TimestampPath": "$.at", "End": True})  # fmt: skip
    engine, tr = start(defn, {"at": "2023-11-14T22:20:00Z"})
    (timer,) = of_type(tr, "timer")
    assert timer["due"] == T0 + 30
    tr = engine.step(tr.doc, {"type": "timer", "token": timer["token"]}, T0 + 30)
    (timer,) = of_type(tr, "timer")
    assert timer["due"] == 1_700_000_400.0
    tr = engine.step(tr.doc, {"type": "timer", "token": timer["token"]}, T0 + 400)
    assert finished(tr)["output"] == {"at": "2023-11-14T22:20:00Z"}


def test_choice_default_and_no_match() -> None:
    defn = machine(C={"Type": "Choice", "Choices": [
        {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}], "Default": "Small"},
        Big={"Type": "Pass", "Result": "big", "End": True},
        Small={"Type": "Pass", "Result": "small", "End": True})  # fmt: skip
    assert run_local(defn, {"n": 11})["output"] == "big"
    assert run_local(defn, {"n": 1})["output"] == "small"
    del defn["States"]["C"]["Default"]
    defn["States"].pop("Small")
    assert run_local(defn, {"n": 1})["error"] == "States.NoChoiceMatched"


def test_succeed_and_fail_with_paths() -> None:
    assert run_local(machine(S={"Type": "Succeed", "OutputPath": "$.a"}), {"a": [1]}) == {
        "status": "SUCCEEDED", "output": [1]}  # fmt: skip
    defn = machine(F={"Type": "Fail", "ErrorPath": "$.e",
                      "CausePath": "States.Format('bad {}', $.n)"})  # fmt: skip
    assert run_local(defn, {"e": "Oops", "n": 2}) == {
        "status": "FAILED", "error": "Oops", "cause": "bad 2"}  # fmt: skip


def test_parallel_collects_branch_outputs_in_order_and_fails_fast() -> None:
    branch = lambda r: machine(P={"Type": "Pass", "Result": r, "End": True})  # noqa: E731
    defn = machine(P={"Type": "Parallel", "Branches": [branch(1), branch(2)], "End": True})
    assert run_local(defn, {})["output"] == [1, 2]
    failing = machine(F={"Type": "Fail", "Error": "E1", "Cause": "c"})
    defn["States"]["P"]["Branches"].append(failing)
    assert run_local(defn, {}) == {"status": "FAILED", "error": "E1", "cause": "c"}


def test_map_respects_max_concurrency_and_keeps_item_order() -> None:
    defn = machine(M={"Type": "Map", "MaxConcurrency": 2, "ItemsPath": "$.items",
                      "ItemSelector": {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value"},
                      "ItemProcessor": machine(T={"Type": "Task", "Resource": "fn",
                                                  "End": True}), "End": True})  # fmt: skip
    engine, tr = start(defn, {"items": ["a", "b", "c", "d", "e"]})
    in_flight = of_type(tr, "invoke")
    assert [c["payload"] for c in in_flight] == [{"i": 0, "v": "a"}, {"i": 1, "v": "b"}]
    results: dict[int, Any] = {}
    while in_flight:  # answer the newest first: output order must still follow the items
        call = in_flight.pop()
        tr = engine.step(tr.doc, {"type": "task_succeeded", "token": call["token"],
                                  "result": call["payload"]["v"].upper()}, T0)  # fmt: skip
        results[call["payload"]["i"]] = True
        in_flight += of_type(tr, "invoke")
        assert len(in_flight) <= 2
    assert finished(tr)["output"] == ["A", "B", "C", "D", "E"]
    assert len(results) == 5


# -- errors ------------------------------------------------------------------------------------


def test_retry_backs_off_with_timers_then_catch_records_the_error() -> None:
    retry = {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}
    defn = machine(
        T={"Type": "Task", "Resource": "fn", "Retry": [retry], "Next": "Done",
           "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.err", "Next": "Caught"}]},
        Done={"Type": "Succeed"}, Caught={"Type": "Pass", "End": True},
    )  # fmt: skip
    engine, tr = start(defn, {"id": 7})
    now, dues = T0, []
    for _ in range(2):
        call = of_type(tr, "invoke")[0]
        tr = engine.step(tr.doc, {"type": "task_failed", "token": call["token"], "error": "Flaky",
                                  "cause": "c"}, now)  # fmt: skip
        (timer,) = of_type(tr, "timer")
        dues.append(timer["due"] - now)
        now = timer["due"]
        tr = engine.step(tr.doc, {"type": "timer", "token": timer["token"]}, now)
        assert of_type(tr, "invoke")[0]["payload"] == {"id": 7}  # the same input again
    assert dues == [2.0, 6.0]
    call = of_type(tr, "invoke")[0]
    tr = engine.step(tr.doc, {"type": "task_failed", "token": call["token"], "error": "Flaky",
                              "cause": "third"}, now)  # fmt: skip
    assert finished(tr)["output"] == {"id": 7, "err": {"Error": "Flaky", "Cause": "third"}}


def test_backoff_caps_at_max_delay_and_full_jitter_stays_below() -> None:
    r = {"IntervalSeconds": 1, "BackoffRate": 10, "MaxDelaySeconds": 50}
    assert [backoff_s(r, n, 0) for n in range(3)] == [1, 10, 50]
    jittered = [backoff_s({**r, "JitterStrategy": "FULL"}, 2, seed) for seed in range(20)]
    assert all(0 <= d <= 50 for d in jittered) and len(set(jittered)) > 1


def test_task_failed_matches_function_errors_but_not_timeouts() -> None:
    defn = machine(T={"Type": "Task", "Resource": "fn", "TimeoutSeconds": 5, "End": True,
                      "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "C"}]},
                   C={"Type": "Pass", "End": True})  # fmt: skip
    engine, tr = start(defn)
    call = of_type(tr, "invoke")[0]
    caught = engine.step(tr.doc, {"type": "task_failed", "token": call["token"],
                                  "error": "ValueError", "cause": "{}"}, T0)  # fmt: skip
    assert finished(caught)["output"] == {"Error": "ValueError", "Cause": "{}"}
    (timeout,) = of_type(tr, "timer")
    assert timeout["due"] == T0 + 5
    timed_out = engine.step(tr.doc, {"type": "timer", "token": timeout["token"]}, T0 + 5)
    assert finished(timed_out)["error"] == "States.Timeout"
    late = engine.step(timed_out.doc, {"type": "task_succeeded", "token": call["token"],
                                       "result": 1}, T0 + 6)  # fmt: skip
    assert late.commands == []


def test_heartbeat_timeout_unless_heartbeats_arrive() -> None:
    defn = machine(T={"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                      "Parameters": {"FunctionName": "fn", "Payload": {"tok.$": "$$.Task.Token"}},
                      "HeartbeatSeconds": 10, "End": True})  # fmt: skip
    engine, tr = start(defn)
    call = of_type(tr, "invoke")[0]
    assert call["callback"] and call["payload"] == {"tok": call["token"]}
    (hb,) = of_type(tr, "timer")
    beat = engine.step(tr.doc, {"type": "task_heartbeat", "token": call["token"]}, T0 + 8)
    (hb2,) = of_type(beat, "timer")
    assert hb2["due"] == T0 + 18
    stale = engine.step(beat.doc, {"type": "timer", "token": hb["token"]}, T0 + 10)
    assert stale.commands == []  # the first heartbeat timer was replaced
    out = engine.step(beat.doc, {"type": "timer", "token": hb2["token"]}, T0 + 18)
    assert finished(out)["error"] == "States.HeartbeatTimeout"


def test_runtime_errors_are_not_caught_and_name_the_state() -> None:
    defn = machine(P={"Type": "Pass", "InputPath": "$.missing", "End": True,
                      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "P"}]})  # fmt: skip
    del defn["States"]["P"]["Catch"]  # Pass has no Catch; show the runtime message instead
    out = run_local(defn, {"a": 1})
    assert out["error"] == "States.Runtime"
    assert out["cause"] == ("An error occurred while executing the state 'P' (entered at the "
                            "event id #2). Invalid path '$.missing' : No results for path: "
                            "$['missing']")  # fmt: skip


def test_stop_aborts_and_execution_timeout_times_out() -> None:
    defn = {**machine(W={"Type": "Wait", "Seconds": 100, "End": True}), "TimeoutSeconds": 10}
    engine, tr = start(defn)
    aborted = engine.step(tr.doc, {"type": "stop", "error": "Op", "cause": "by hand"}, T0)
    assert finished(aborted)["status"] == "ABORTED"
    timer = min(of_type(tr, "timer"), key=lambda t: t["due"])
    assert timer["due"] == T0 + 10
    assert finished(engine.step(tr.doc, {"type": "timer", "token": timer["token"]},
                                T0 + 10))["status"] == "TIMED_OUT"  # fmt: skip


def test_the_document_is_plain_json_at_every_step() -> None:
    defn = machine(M={"Type": "Map", "ItemProcessor": machine(
        T={"Type": "Task", "Resource": "fn", "End": True}), "End": True})  # fmt: skip
    engine, tr = start(defn, [1, 2])
    doc = json.loads(json.dumps(tr.doc))  # as a store would round-trip it
    for call in of_type(tr, "invoke"):
        tr = engine.step(doc, {"type": "task_succeeded", "token": call["token"],
                               "result": call["payload"] * 10}, T0)  # fmt: skip
        doc = json.loads(json.dumps(tr.doc))
    assert doc["status"] == "SUCCEEDED" and doc["output"] == [10, 20]


# -- intrinsics, choice operators, JSONata ---------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    ("States.Format('{} and {}', $.a, $.o)", "1 and {k=v}"),
    ("States.StringToJson('{\"x\":[1]}')", {"x": [1]}),
    ("States.JsonToString($.o)", '{"k":"v"}'),
    ("States.Array($.a, 'two', null)", [1, "two", None]),
    ("States.ArrayPartition($.l, 2)", [[1, 2], [3]]),
    ("States.ArrayContains($.l, 3)", True),
    ("States.ArrayRange(1, 9, 4)", [1, 5, 9]),
    ("States.ArrayGetItem($.l, 1)", 2),
    ("States.ArrayLength($.l)", 3),
    ("States.ArrayUnique(States.Array(1, 1, 2))", [1, 2]),
    ("States.Base64Encode('hi')", "aGk="),
    ("States.Base64Decode('aGk=')", "hi"),
    ("States.Hash('hi', 'MD5')", "49f68a5c8493ec2c0bf489821c21fc3b"),
    ("States.JsonMerge($.o, States.StringToJson('{\"z\":1}'), false)", {"k": "v", "z": 1}),
    ("States.MathAdd($.a, -3)", -2),
    ("States.StringSplit('a,b;c', ',;')", ["a", "b", "c"]),
    ("States.Format('\\{\\} {}', 'x')", "{} x"),
])  # fmt: skip
def test_intrinsics(expr: str, expected: Any) -> None:
    data = {"a": 1, "o": {"k": "v"}, "l": [1, 2, 3]}
    assert intrinsic(expr, data, {}) == expected


def test_intrinsic_uuid_and_random_have_the_right_shape() -> None:
    assert len(intrinsic("States.UUID()", {}, {})) == 36
    assert 5 <= intrinsic("States.MathRandom(5, 7)", {}, {}) < 7


@pytest.mark.parametrize(("rule", "holds"), [
    ({"Variable": "$.s", "StringEquals": "abc"}, True),
    ({"Variable": "$.s", "StringEqualsPath": "$.s2"}, False),
    ({"Variable": "$.s", "StringLessThan": "abd"}, True),
    ({"Variable": "$.s", "StringGreaterThanEquals": "abc"}, True),
    ({"Variable": "$.s", "StringMatches": "a*c"}, True),
    ({"Variable": "$.n", "NumericEquals": 2.0}, True),
    ({"Variable": "$.n", "NumericLessThanPath": "$.m"}, True),
    ({"Variable": "$.n", "NumericGreaterThan": 2}, False),
    ({"Variable": "$.n", "StringEquals": "2"}, False),
    ({"Variable": "$.b", "BooleanEquals": True}, True),
    ({"Variable": "$.t", "TimestampLessThan": "2024-01-01T00:00:00Z"}, True),
    ({"Variable": "$.t", "TimestampEqualsPath": "$.t"}, True),
    ({"Variable": "$.x", "IsNull": True}, True),
    ({"Variable": "$.nope", "IsPresent": False}, True),
    ({"Variable": "$.n", "IsNumeric": True}, True),
    ({"Variable": "$.s", "IsString": True}, True),
    ({"Variable": "$.b", "IsBoolean": True}, True),
    ({"Variable": "$.t", "IsTimestamp": True}, True),
    ({"And": [{"Variable": "$.n", "NumericEquals": 2}, {"Not": {
        "Variable": "$.b", "BooleanEquals": False}}]}, True),
    ({"Or": [{"Variable": "$.n", "NumericEquals": 3}, {"Variable": "$.s", "IsNull": True}]},
     False),
])  # fmt: skip
def test_choice_operators(rule: dict[str, Any], holds: bool) -> None:
    data = {"s": "abc", "s2": "abd", "n": 2, "m": 3, "b": True, "x": None,
            "t": "2023-05-01T12:00:00+02:00"}  # fmt: skip
    assert rule_holds(rule, data, {}) is holds


def test_string_matches_escapes() -> None:
    assert string_matches("log-*.txt", "log-\\*.txt")
    assert not string_matches("log-1.txt", "log-\\*.txt")
    assert string_matches("a\\b", "a\\\\b")


def test_jsonata_state_with_arguments_output_assign_and_variables() -> None:
    defn = {"QueryLanguage": "JSONata", **machine(
        A={"Type": "Pass", "Assign": {"total": "{% $sum($states.input.xs) %}"}, "Next": "T"},
        T={"Type": "Task", "Resource": "fn", "Arguments": {"t": "{% $total %}"},
           "Output": "{% {'r': $states.result, 't': $total} %}", "End": True})}  # fmt: skip
    engine, tr = start(defn, {"xs": [1, 2, 3]})
    call = of_type(tr, "invoke")[0]
    assert call["payload"] == {"t": 6}
    tr = engine.step(tr.doc, {"type": "task_succeeded", "token": call["token"], "result": "ok"}, T0)
    assert finished(tr)["output"] == {"r": "ok", "t": 6}


def test_jsonata_choice_condition_and_catch_output() -> None:
    defn = {"QueryLanguage": "JSONata", **machine(
        C={"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 1 %}",
                                           "Next": "Boom"}], "Default": "Done"},
        Boom={"Type": "Parallel", "Branches": [machine(F={"Type": "Fail", "Error": "E"})],
              "Catch": [{"ErrorEquals": ["E"], "Next": "Done",
                         "Output": "{% $states.errorOutput.Error & '!' %}"}], "Next": "Done"},
        Done={"Type": "Succeed"})}  # fmt: skip
    assert run_local(defn, {"n": 2})["output"] == "E!"
    assert run_local(defn, {"n": 0})["output"] == {"n": 0}
