"""Load and validate an Amazon States Language definition before anything runs.

Every refusal names the state and the field, in the form AWS's
CreateStateMachine uses (``Invalid State Machine Definition: 'CODE: message at
/States/Name/Field'``), so a bad template fails at load with one clear line
instead of halfway through an execution.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from . import intrinsics, jsonata_eval, paths

MAX_DEFINITION_BYTES = 1024 * 1024
MAX_INPUT_BYTES = 256 * 1024
"""AWS's quota for an execution's input, a state's input/output and a task result."""

STATE_TYPES = frozenset(["Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"])
TERMINAL = frozenset(["Choice", "Succeed", "Fail"])
PATH_FIELDS = ("InputPath", "OutputPath", "ItemsPath", "SecondsPath", "TimestampPath")
TEMPLATE_FIELDS = ("Parameters", "ResultSelector", "ItemSelector")
UNSUPPORTED_MAP_FIELDS = frozenset(
    ["ItemReader", "ItemBatcher", "ResultWriter", "ToleratedFailurePercentage",
     "ToleratedFailureCount", "ToleratedFailurePercentagePath", "ToleratedFailureCountPath"]
)  # fmt: skip


class DefinitionError(ValueError):
    """The definition is refused; the message names the state and the field."""

    def __init__(self, code: str, message: str, where: str) -> None:
        super().__init__(f"Invalid State Machine Definition: '{code}: {message} at {where}'")
        self.code = code
        self.where = where


class InputError(ValueError):
    """An execution input AWS refuses (not JSON, or over 256 KB)."""


def load(source: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """Parse (if text) and validate a definition; returns the definition as a dict."""
    if isinstance(source, str | bytes):
        if len(source) > MAX_DEFINITION_BYTES:
            raise DefinitionError(
                "SCHEMA_VALIDATION_FAILED",
                f"The definition is larger than {MAX_DEFINITION_BYTES} bytes",
                "/",
            )
        try:
            doc = json.loads(source)
        except ValueError as exc:
            raise DefinitionError("INVALID_JSON_DESCRIPTION", str(exc), "/") from None
    else:
        doc = source
    validate(doc)
    return doc


def parse_input(text: str | None) -> Any:
    """The execution input as AWS accepts it: JSON text of at most 256 KB."""
    text = "{}" if text is None else text
    size = len(text.encode())
    if size > MAX_INPUT_BYTES:
        raise InputError(
            f"1 validation error detected: Value at 'input' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_INPUT_BYTES} (got {size} bytes)"
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"Invalid State Machine Execution Input: '{exc}'") from None


def validate(doc: Any, where: str = "", language: str = "JSONPath") -> None:
    if not isinstance(doc, dict):
        raise DefinitionError("SCHEMA_VALIDATION_FAILED", "Expected an object", where or "/")
    language = doc.get("QueryLanguage", language)
    if language not in ("JSONPath", "JSONata"):
        raise DefinitionError("SCHEMA_VALIDATION_FAILED", f"Unknown QueryLanguage {language!r}",
                              f"{where}/QueryLanguage")  # fmt: skip
    states = doc.get("States")
    if not isinstance(states, dict) or not states:
        raise DefinitionError("SCHEMA_VALIDATION_FAILED", "These fields are required: [States]",
                              where or "/")  # fmt: skip
    start = doc.get("StartAt")
    if not isinstance(start, str) or start not in states:
        raise DefinitionError("MISSING_TRANSITION_TARGET",
                              f"Missing 'StartAt' target: {start}", f"{where}/StartAt")  # fmt: skip
    for name, state in states.items():
        _validate_state(name, state, states, f"{where}/States/{name}", language)
    reachable = _reachable(start, states)
    for name in states:
        if name not in reachable:
            raise DefinitionError(
                "UNREACHABLE_STATE", f'State "{name}" is not reachable.', f"{where}/States/{name}"
            )


def _fail(code: str, msg: str, at: str) -> DefinitionError:
    return DefinitionError(code, msg, at)


def _validate_state(name: str, state: Any, states: dict[str, Any], at: str,
                    language: str) -> None:  # fmt: skip
    if len(name) > 80:
        raise _fail("SCHEMA_VALIDATION_FAILED", f"State name {name!r} is longer than 80", at)
    if not isinstance(state, dict):
        raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r} must be an object", at)
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        msg = f"State {name!r}: {kind!r} is not a valid state type"
        raise _fail("SCHEMA_VALIDATION_FAILED", msg, f"{at}/Type")
    lang = state.get("QueryLanguage", language)
    if kind not in TERMINAL:
        has_next, ends = "Next" in state, state.get("End") is True
        if has_next == ends:
            raise _fail(
                "SCHEMA_VALIDATION_FAILED",
                f"State {name!r} must have exactly one of 'Next' or 'End': true",
                f"{at}/Next",
            )
    elif "Next" in state or "End" in state:
        raise _fail("SCHEMA_VALIDATION_FAILED",
                    f"State {name!r} of type {kind} cannot have 'Next' or 'End'", at)  # fmt: skip
    if "Next" in state:
        _target(state["Next"], states, name, f"{at}/Next")
    if lang == "JSONPath":
        _validate_paths(name, state, at)
    if kind == "Task":
        _validate_resource(name, state.get("Resource"), f"{at}/Resource")
    if kind == "Map":
        for key in UNSUPPORTED_MAP_FIELDS & state.keys():
            raise _fail("UNSUPPORTED_FEATURE", f"State {name!r}: {key} (distributed Map) is not "
                        "supported by lambdabus; use an inline Map", f"{at}/{key}")  # fmt: skip
    if kind == "Choice":
        _validate_choice(name, state, states, at, lang)
    if kind == "Wait":
        keys = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in state]
        if len(keys) != 1:
            raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: a Wait needs exactly one "
                        "of Seconds, Timestamp, SecondsPath, TimestampPath", at)  # fmt: skip
    for i, retrier in enumerate(state.get("Retry") or []):
        _validate_errors(name, retrier, f"{at}/Retry[{i}]")
    for i, catcher in enumerate(state.get("Catch") or []):
        _validate_errors(name, catcher, f"{at}/Catch[{i}]")
        _target(catcher.get("Next"), states, name, f"{at}/Catch[{i}]/Next")
    if kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: 'Branches' must be a "
                        "non-empty list", f"{at}/Branches")  # fmt: skip
        for i, branch in enumerate(branches):
            validate(branch, f"{at}/Branches[{i}]", lang)
    if kind == "Map":
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        if key not in state:
            raise _fail("SCHEMA_VALIDATION_FAILED",
                        f"State {name!r}: 'ItemProcessor' is required", at)  # fmt: skip
        validate(state[key], f"{at}/{key}", lang)


def _validate_resource(name: str, resource: Any, at: str) -> None:
    if not isinstance(resource, str) or not resource:
        raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: 'Resource' is required", at)
    if resource.startswith("arn:aws:states:::") and not resource.startswith(
        "arn:aws:states:::lambda:invoke"
    ):
        raise _fail("UNSUPPORTED_FEATURE", f"State {name!r}: lambdabus runs Lambda tasks only "
                    f"(a function ARN, or arn:aws:states:::lambda:invoke[.waitForTaskToken]); "
                    f"{resource!r} is not one", at)  # fmt: skip
    if resource.startswith("arn:") and ":activity:" in resource:
        raise _fail("UNSUPPORTED_FEATURE", f"State {name!r}: activities are not supported", at)


def _target(target: Any, states: dict[str, Any], name: str, at: str) -> None:
    if not isinstance(target, str) or target not in states:
        raise _fail("MISSING_TRANSITION_TARGET",
                    f"State {name!r}: missing 'Next' target: {target}", at)  # fmt: skip


def _validate_errors(name: str, handler: Any, at: str) -> None:
    errors = handler.get("ErrorEquals") if isinstance(handler, dict) else None
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) for e in errors):
        raise _fail("SCHEMA_VALIDATION_FAILED",
                    f"State {name!r}: 'ErrorEquals' must be a non-empty list of strings",
                    f"{at}/ErrorEquals")  # fmt: skip
    if "States.ALL" in errors and len(errors) != 1:
        raise _fail(
            "SCHEMA_VALIDATION_FAILED",
            f"State {name!r}: States.ALL must appear alone",
            f"{at}/ErrorEquals",
        )


def _check_path(name: str, text: Any, at: str, *, reference: bool = False,
                intrinsic: bool = False) -> None:  # fmt: skip
    if text is None:
        return
    if intrinsic and isinstance(text, str) and intrinsics.looks_intrinsic(text):
        try:
            intrinsics.parse(text)
        except intrinsics.IntrinsicSyntaxError as exc:
            raise _fail(
                "SCHEMA_VALIDATION_FAILED", f"State {name!r}: invalid intrinsic function: {exc}", at
            ) from None
        return
    try:
        path = paths.parse(text)
    except (paths.PathSyntaxError, TypeError) as exc:
        raise _fail("INVALID_JSON_PATH", f"State {name!r}: invalid JSONPath {text!r}: {exc}",
                    at) from None  # fmt: skip
    if reference and (not path.definite or path.context):
        raise _fail("INVALID_REFERENCE_PATH",
                    f"State {name!r}: {text!r} is not a reference path", at)  # fmt: skip


def _validate_paths(name: str, state: dict[str, Any], at: str) -> None:
    for field in PATH_FIELDS:
        _check_path(name, state.get(field), f"{at}/{field}")
    _check_path(name, state.get("ResultPath"), f"{at}/ResultPath", reference=True)
    for field in ("ErrorPath", "CausePath"):
        _check_path(name, state.get(field), f"{at}/{field}", intrinsic=True)
    for field in (*TEMPLATE_FIELDS, "Assign"):
        for key_at, text in _dollar_keys(state.get(field), f"{at}/{field}"):
            _check_path(name, text, key_at, intrinsic=True)


def _dollar_keys(template: Any, at: str) -> Iterator[tuple[str, Any]]:
    if isinstance(template, dict):
        for k, v in template.items():
            if k.endswith(".$"):
                yield f"{at}/{k}", v
            else:
                yield from _dollar_keys(v, f"{at}/{k}")
    elif isinstance(template, list):
        for i, v in enumerate(template):
            yield from _dollar_keys(v, f"{at}[{i}]")


def _validate_choice(name: str, state: dict[str, Any], states: dict[str, Any], at: str,
                     lang: str) -> None:  # fmt: skip
    choices = state.get("Choices")
    if not isinstance(choices, list) or not choices:
        raise _fail(
            "SCHEMA_VALIDATION_FAILED",
            f"State {name!r}: 'Choices' must be a non-empty list",
            f"{at}/Choices",
        )
    for i, rule in enumerate(choices):
        if not isinstance(rule, dict):
            raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: a rule must be an object",
                        f"{at}/Choices[{i}]")  # fmt: skip
        _target(rule.get("Next"), states, name, f"{at}/Choices[{i}]/Next")
        if lang == "JSONata":
            if not jsonata_eval.is_expression(rule.get("Condition")) and not isinstance(
                rule.get("Condition"), bool
            ):
                raise _fail("SCHEMA_VALIDATION_FAILED",
                            f"State {name!r}: 'Condition' must be a {{% %}} expression",
                            f"{at}/Choices[{i}]/Condition")  # fmt: skip
        else:
            _validate_rule(name, rule, f"{at}/Choices[{i}]")
    if "Default" in state:
        _target(state["Default"], states, name, f"{at}/Default")


def _validate_rule(name: str, rule: Any, at: str) -> None:
    from .choice import COMPARISONS, TESTS

    if not isinstance(rule, dict):
        raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: a rule must be an object", at)
    for key in ("And", "Or"):
        if key in rule:
            for j, sub in enumerate(rule[key] if isinstance(rule[key], list) else [None]):
                _validate_rule(name, sub, f"{at}/{key}[{j}]")
            return
    if "Not" in rule:
        _validate_rule(name, rule["Not"], f"{at}/Not")
        return
    ops = [k for k in rule if k in COMPARISONS or k in TESTS]
    if len(ops) != 1 or "Variable" not in rule:
        raise _fail("SCHEMA_VALIDATION_FAILED", f"State {name!r}: a rule needs 'Variable' and "
                    "exactly one comparison operator", at)  # fmt: skip
    _check_path(name, rule["Variable"], f"{at}/Variable")
    if ops[0].endswith("Path"):
        _check_path(name, rule[ops[0]], f"{at}/{ops[0]}")


def _reachable(start: str, states: dict[str, Any]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        st = states[name]
        todo.extend(t for t in (st.get("Next"), st.get("Default")) if isinstance(t, str))
        for rule in st.get("Choices") or []:
            if isinstance(rule, dict) and isinstance(rule.get("Next"), str):
                todo.append(rule["Next"])
        for c in st.get("Catch") or []:
            if isinstance(c, dict) and isinstance(c.get("Next"), str):
                todo.append(c["Next"])
    return seen
