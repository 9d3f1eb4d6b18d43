"""Applying one event to an execution: a task's result or heartbeat, a due timer, a stop.

Every wait is keyed by a token; an event whose token is no longer pending (a
duplicate, a late result of a cancelled branch), or that is not what the token
waits for, changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors as E
from .dataflow import Scope, compact
from .definition import MAX_INPUT_BYTES
from .errors import StatesError
from .states import lambda_result

if TYPE_CHECKING:
    from .transition import Doc, _Run


def apply_event(run: _Run, event: dict[str, Any]) -> None:
    kind, tok = event.get("type"), event.get("token")
    if kind == "stop":
        run.finish("ABORTED", error=event.get("error"), cause=event.get("cause"))
        return
    pending = run.doc["pending"].get(tok)
    if pending is None:
        return
    frame = run.doc["frames"].get(pending["frame"]) if pending["frame"] else None
    if kind == "task_heartbeat":
        if pending["kind"] == "task" and frame and frame.get("heartbeat_s"):
            run.drop(frame.pop("hb_timer", None))
            frame["hb_timer"] = run.timer(run.now + frame["heartbeat_s"], frame["id"],
                                          "heartbeat")  # fmt: skip
        return
    if kind in ("task_succeeded", "task_failed") and pending["kind"] != "task":
        return
    if kind == "timer" and pending["kind"] == "task":
        return
    run.doc["pending"].pop(tok)
    if pending["kind"] == "exec_timeout":
        run.finish("TIMED_OUT", error=E.TIMEOUT,
                   cause="The execution timed out (TimeoutSeconds).")  # fmt: skip
        return
    if frame is None:
        return
    spec = run.spec(frame)
    scope = run.scope(frame, spec)
    if pending["kind"] == "wait":
        run.leave(frame, spec, frame.pop("wait_output"), {})
    elif pending["kind"] == "retry":
        frame["status"] = "RUN"
        run.ready.append(frame["id"])
    elif pending["kind"] in ("timeout", "heartbeat"):
        end_task(run, frame)
        name = E.TIMEOUT if pending["kind"] == "timeout" else E.HEARTBEAT_TIMEOUT
        run.history("TaskTimedOut", taskTimedOutEventDetails={"error": name})
        run.state_failed(frame, spec, scope, StatesError(name, None))
    elif kind == "task_failed":
        end_task(run, frame)
        error, cause = event.get("error"), event.get("cause")
        run.history("TaskFailed", taskFailedEventDetails={"error": error, "cause": cause})
        run.state_failed(frame, spec, scope, StatesError(error, cause))
    else:
        end_task(run, frame)
        task_done(run, frame, spec, scope, event.get("result"))


def end_task(run: _Run, frame: Doc) -> None:
    for key in ("task", "to_timer", "hb_timer"):
        run.drop(frame.pop(key, None))
    frame["status"] = "RUN"


def task_done(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope, result: Any) -> None:
    run.history("TaskSucceeded", taskSucceededEventDetails={"output": compact(result)})
    try:
        if len(compact(result).encode()) > MAX_INPUT_BYTES:
            raise StatesError(E.DATA_LIMIT, "The task returned a result over the "
                              "256 KB service limit.")  # fmt: skip
        result = lambda_result(spec, result)
        run.leave(frame, spec, scope.output(result), scope.assignments(result))
    except StatesError as err:
        run.state_failed(frame, spec, scope, err)
