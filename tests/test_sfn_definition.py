"""ASL definitions are checked at load: every refusal names the state and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.sfn.definition import (
    MAX_INPUT_BYTES,
    DefinitionError,
    InputError,
    load,
    parse_input,
)


def machine(**states: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states}


def refusal(doc: Any) -> str:
    with pytest.raises(DefinitionError) as info:
        load(doc if isinstance(doc, str) else json.dumps(doc))
    return str(info.value)


def test_a_valid_definition_loads_from_text_and_from_a_dict() -> None:
    doc = machine(A={"Type": "Pass", "Next": "B"}, B={"Type": "Succeed"})
    assert load(json.dumps(doc)) == doc
    assert load(doc) is doc


def test_unknown_state_type_names_the_state() -> None:
    msg = refusal(machine(A={"Type": "Sleep", "End": True}))
    assert "'A'" in msg and "'Sleep' is not a valid state type" in msg
    assert msg.endswith("at /States/A/Type'")


def test_missing_next_target_names_the_state_and_target() -> None:
    msg = refusal(machine(A={"Type": "Pass", "Next": "Nowhere"}))
    assert "MISSING_TRANSITION_TARGET" in msg and "Nowhere" in msg and "/States/A/Next" in msg


def test_neither_next_nor_end_is_refused() -> None:
    msg = refusal(machine(A={"Type": "Pass"}))
    assert "State 'A' must have exactly one of 'Next' or 'End'" in msg


def test_bad_jsonpath_is_refused_naming_the_field() -> None:
    msg = refusal(machine(A={"Type": "Pass", "InputPath": "$.a[", "End": True}))
    assert "INVALID_JSON_PATH" in msg and "/States/A/InputPath" in msg
    msg = refusal(machine(A={"Type": "Pass", "Parameters": {"x.$": "nope"}, "End": True}))
    assert "/States/A/Parameters/x.$" in msg


def test_result_path_must_be_a_reference_path() -> None:
    msg = refusal(machine(A={"Type": "Pass", "ResultPath": "$.a[*]", "End": True}))
    assert "INVALID_REFERENCE_PATH" in msg and "'A'" in msg


def test_unreachable_state_is_refused() -> None:
    msg = refusal(machine(A={"Type": "Succeed"}, Orphan={"Type": "Pass", "End": True}))
    assert 'UNREACHABLE_STATE: State "Orphan" is not reachable.' in msg


def test_states_inside_branches_and_iterators_are_checked_too() -> None:
    inner = machine(X={"Type": "Wait", "End": True})  # a Wait with no duration
    msg = refusal(machine(P={"Type": "Parallel", "Branches": [inner], "End": True}))
    assert "/States/P/Branches[0]/States/X" in msg
    msg = refusal(machine(M={"Type": "Map", "ItemProcessor": machine(
        Y={"Type": "Pass", "Next": "Gone"}), "End": True}))  # fmt: skip
    assert "/States/M/ItemProcessor/States/Y/Next" in msg


def test_choice_rules_and_catchers_are_checked() -> None:
    msg = refusal(machine(C={"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "C"}]}))
    assert "exactly one comparison operator" in msg
    msg = refusal(machine(T={"Type": "Task", "Resource": "fn", "End": True,
                             "Catch": [{"ErrorEquals": [], "Next": "T"}]}))  # fmt: skip
    assert "/States/T/Catch[0]/ErrorEquals" in msg
    msg = refusal(machine(T={"Type": "Task", "End": True}))
    assert "'Resource' is required" in msg


def test_features_lambdabus_does_not_run_are_refused_naming_the_state() -> None:
    msg = refusal(machine(Q={"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                             "End": True}))  # fmt: skip
    assert "UNSUPPORTED_FEATURE" in msg and "State 'Q'" in msg and "sqs:sendMessage" in msg
    msg = refusal(
        machine(
            M={
                "Type": "Map",
                "ItemReader": {},
                "End": True,
                "ItemProcessor": machine(P={"Type": "Pass", "End": True}),
            }
        )
    )
    assert "State 'M': ItemReader (distributed Map) is not supported" in msg
    assert load(
        machine(
            T={
                "Type": "Task",
                "End": True,
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            }
        )
    )


def test_bad_intrinsic_is_refused() -> None:
    msg = refusal(machine(A={"Type": "Pass", "Parameters": {"x.$": "States.Nope(1)"},
                             "End": True}))  # fmt: skip
    assert "unknown intrinsic function 'States.Nope'" in msg


def test_not_json_and_not_a_machine_are_refused() -> None:
    assert "INVALID_JSON_DESCRIPTION" in refusal("{not json")
    assert "These fields are required: [States]" in refusal({"StartAt": "A"})
    assert "Missing 'StartAt' target: B" in refusal(machine(A={"Type": "Succeed"}) | {
        "StartAt": "B"})  # fmt: skip


def test_execution_input_over_256_kb_is_refused_as_aws_does() -> None:
    just_fits = json.dumps({"x": "a" * (MAX_INPUT_BYTES - 10)})
    assert parse_input(just_fits)["x"].startswith("a")
    with pytest.raises(InputError, match="less than or equal to 262144"):
        parse_input(json.dumps({"x": "a" * MAX_INPUT_BYTES}))
    with pytest.raises(InputError, match="Invalid State Machine Execution Input"):
        parse_input("{oops")
