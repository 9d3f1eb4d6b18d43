"""What each state type does when a frame enters it (Map and Parallel: fanout.py).

Every function takes the transition in progress (``_Run``), the frame, the
state's definition and its Scope; it ends by leaving the state, failing the
frame, or arming what the state waits for (a task token, a timer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import choice
from . import errors as E
from .dataflow import Scope, compact, path_or_intrinsic
from .definition import MAX_INPUT_BYTES
from .errors import StatesError
from .waits import due_time, seconds_field

if TYPE_CHECKING:
    from .transition import Doc, _Run


def run_pass(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    if scope.jsonata:
        run.leave(frame, spec, scope.output(scope.raw), scope.assignments(scope.raw))
        return
    effective = scope.effective_input()
    result = spec["Result"] if "Result" in spec else scope.arguments(effective)
    run.leave(frame, spec, scope.output(result), scope.assignments(result))


def run_succeed(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    if scope.jsonata:
        output = scope.output(scope.raw)
    else:
        output = scope.output_path(scope.effective_input())
    run.history(
        "SucceedStateExited",
        stateExitedEventDetails={"name": frame["state"], "output": compact(output)},
    )
    run.frame_done(frame, output)


def run_fail(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    if scope.jsonata:
        error, cause = (
            scope.expr(spec.get("Error"), "Error"),
            scope.expr(spec.get("Cause"), "Cause"),
        )
    else:
        error, cause = spec.get("Error"), spec.get("Cause")
        data, ctx, variables = scope.raw, scope.context, scope.variables
        if "ErrorPath" in spec:
            error = path_or_intrinsic(spec["ErrorPath"], data, ctx, variables)
        if "CausePath" in spec:
            cause = path_or_intrinsic(spec["CausePath"], data, ctx, variables)
    run.frame_failed(frame, error, cause)


def run_choice(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    effective = scope.effective_input()
    for rule in spec["Choices"]:
        if scope.jsonata:
            held = scope.expr(rule["Condition"], "Condition")
            if not isinstance(held, bool):
                raise StatesError(E.QUERY_EVALUATION, f"The Condition of a rule evaluated to "
                                  f"{compact(held)}, not a boolean", runtime=True)  # fmt: skip
        else:
            held = choice.evaluate(rule, effective, scope.context)
        if held:
            run.leave(frame, spec, choice_output(scope, effective, rule),
                       scope.assignments(effective, rule), rule["Next"])  # fmt: skip
            return
    if "Default" in spec:
        run.leave(frame, spec, choice_output(scope, effective, spec),
                   scope.assignments(effective), spec["Default"])  # fmt: skip
        return
    raise StatesError(E.NO_CHOICE, f"An error occurred while executing the state "
                      f"'{frame['state']}' (entered at the event id #{frame['entered']}). "
                      "Failed to transition out of the state. The state does not point to "
                      "a next state.")  # fmt: skip


def choice_output(scope: Scope, effective: Any, rule: dict[str, Any]) -> Any:
    if scope.jsonata:
        source = rule if "Output" in rule else scope.spec
        return scope.expr(source["Output"], "Output") if "Output" in source else scope.raw
    return scope.output_path(effective)


def run_wait(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:

    effective = scope.effective_input()
    due = due_time(spec, scope, effective, run.now)
    output = scope.output(scope.raw) if scope.jsonata else scope.output_path(effective)
    frame.update(status="WAIT", wait_output=output)
    frame["wait"] = run.timer(due, frame["id"], "wait")


def run_task(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    effective = scope.effective_input()
    resource = spec["Resource"]
    callback = resource.endswith(".waitForTaskToken")
    tok = run.callback_token() if callback else run.token()
    ctx = run.context(frame, Task={"Token": tok}) if callback else scope.context
    payload = scope.arguments(effective, ctx)
    if len(compact(payload).encode()) > MAX_INPUT_BYTES:
        raise StatesError(E.DATA_LIMIT, "The state's input exceeds the maximum number of "
                          "bytes service limit.")  # fmt: skip
    function, body = _target(resource, payload, spec)
    timeout_s = seconds_field(spec, scope, effective, "TimeoutSeconds")
    heartbeat_s = seconds_field(spec, scope, effective, "HeartbeatSeconds")
    run.doc["pending"][tok] = {"frame": frame["id"], "kind": "task", "callback": callback}
    frame.update(status="WAIT", task=tok, heartbeat_s=heartbeat_s)
    run.history("TaskScheduled", taskScheduledEventDetails={
        "resourceType": "lambda", "resource": resource, "region": "",
        "parameters": compact(payload)})  # fmt: skip
    run.commands.append({"type": "invoke", "token": tok, "resource": resource,
                          "function": function, "payload": body, "callback": callback,
                          "timeout_s": timeout_s, "heartbeat_s": heartbeat_s})  # fmt: skip
    if timeout_s:
        frame["to_timer"] = run.timer(run.now + timeout_s, frame["id"], "timeout")
    if heartbeat_s:
        frame["hb_timer"] = run.timer(run.now + heartbeat_s, frame["id"], "heartbeat")


def lambda_result(spec: dict[str, Any], result: Any) -> Any:
    """``arn:aws:states:::lambda:invoke`` wraps the function's result as the SDK returns it."""
    if not _is_lambda_invoke(spec["Resource"]):
        return result
    return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200,
            "SdkHttpMetadata": {"HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": ""}}  # fmt: skip


def _is_lambda_invoke(resource: str) -> bool:
    return resource.startswith("arn:aws:states:::lambda:invoke") and not resource.endswith(
        ".waitForTaskToken"
    )


def _target(resource: str, payload: Any, spec: dict[str, Any]) -> tuple[str | None, Any]:
    """The function a Task calls and the event it gets."""
    if resource.startswith("arn:aws:states:::lambda:invoke"):
        if not isinstance(payload, dict) or "FunctionName" not in payload:
            raise StatesError(E.RUNTIME, "The field 'FunctionName' is required for "
                              f"{resource}", runtime=True)  # fmt: skip
        return function_name(str(payload["FunctionName"])), payload.get("Payload", {})
    if resource.startswith("arn:aws:states:::"):
        return None, payload
    return function_name(resource), payload


def function_name(ref: str) -> str:
    """``name``, ``arn:aws:lambda:r:a:function:name[:alias]`` → ``name``."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        return parts[6] if len(parts) > 6 else ref
    return ref


RUNNERS = {"Pass": run_pass, "Succeed": run_succeed, "Fail": run_fail, "Choice": run_choice,
           "Wait": run_wait, "Task": run_task}  # fmt: skip
