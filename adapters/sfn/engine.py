"""The ASL interpreter as a deterministic transition function over one JSON document.

``Engine.start(input, ...)`` and ``Engine.step(doc, event, now)`` return a
``Transition``: the new execution document, the commands to carry out
(``invoke`` a task, arm a ``timer``, ``finished``) and the history events it
produced. Nothing sleeps and nothing awaits: Wait and Retry back-off are timers,
Map iterations and Parallel branches are child frames inside the document, so
the whole execution can be persisted after every transition and resumed by
any process. Every wait is keyed by a token; an event whose token is no longer
pending (a duplicate, a late result of a cancelled branch) changes nothing.
"""

from __future__ import annotations

import copy
import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import errors as E
from . import fanout, paths
from .dataflow import Scope, compact
from .definition import MAX_INPUT_BYTES
from .errors import StatesError
from .states import RUNNERS, lambda_result

Doc = dict[str, Any]

MAX_HISTORY_EVENTS = 25_000
"""AWS fails an execution whose history reaches 25,000 events (a hard quota)."""
HISTORY_LIMIT_CAUSE = (
    f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
)
MAX_STATES_PER_TRANSITION = 500
"""States one transition runs at most; the rest continue in the next transition (a
``continue`` command), so one commit never blocks its executor for long."""


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Transition:
    doc: Doc
    commands: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    states: int = 0
    """How many states this transition ran."""


class Engine:
    """Runs executions of one state machine definition (already validated)."""

    def __init__(self, definition: dict[str, Any], state_machine: dict[str, Any] | None = None):
        self.definition = definition
        self.state_machine = state_machine or {"Id": "", "Name": ""}
        self._machines: dict[tuple[Any, ...], dict[str, Any]] = {}

    def machine(self, loc: list[Any]) -> dict[str, Any]:
        key = tuple(loc)
        found = self._machines.get(key)
        if found is None:
            found = self.definition
            for part in loc:
                found = found[part]
            self._machines[key] = found
        return found

    def start(self, input: Any, *, execution: dict[str, Any], now: float,
              token_prefix: str = "") -> Transition:  # fmt: skip
        doc: Doc = {
            "status": "RUNNING", "seq": 0, "event_id": 0, "prefix": token_prefix,
            "execution": {**execution, "Input": input},
            "state_machine": self.state_machine,
            "lang": self.definition.get("QueryLanguage", "JSONPath"),
            "frames": {}, "pending": {}, "start": now,
        }  # fmt: skip
        run = _Run(self, doc, now)
        run.history("ExecutionStarted", executionStartedEventDetails={"input": compact(input)})
        if "TimeoutSeconds" in self.definition:
            run.timer(now + float(self.definition["TimeoutSeconds"]), None, "exec_timeout")
        root = run.new_frame(None, [], doc["lang"], input, {})
        run.enter(root, self.definition["StartAt"], input)
        run.guarded(run.drain)
        return run.result()

    def step(self, doc: Doc, event: dict[str, Any], now: float, *, copy_doc: bool = True,
             max_states: int = MAX_STATES_PER_TRANSITION) -> Transition:  # fmt: skip
        """Apply one event; an event for a token that is not pending changes nothing.

        ``copy_doc=False`` changes ``doc`` in place (a caller applying many events
        copies once, not once per event); ``max_states`` lets such a caller share one
        budget of states among them (at least one state runs, so work always moves).
        """
        if doc["status"] != "RUNNING":
            return Transition(doc)
        run = _Run(self, copy.deepcopy(doc) if copy_doc else doc, now, max(1, max_states))
        run.ready.extend(run.doc.pop("ready", ()))
        run.guarded(lambda: run.apply(event, then_drain=True))
        return run.result()

    def abort_unstarted(self, now: float, error: str | None, cause: str | None) -> Transition:
        """StopExecution of an execution whose start was not applied yet: it ends ABORTED
        without running a state (its later ``start`` then finds a finished document)."""
        doc: Doc = {"status": "RUNNING", "seq": 0, "event_id": 0, "prefix": "", "frames": {},
                    "pending": {}, "start": now}  # fmt: skip
        run = _Run(self, doc, now)
        run.finish("ABORTED", error=error, cause=cause)
        return run.result()


class _Run:
    """One transition in progress: the document being changed and what it emits."""

    def __init__(self, engine: Engine, doc: Doc, now: float,
                 budget: int = MAX_STATES_PER_TRANSITION) -> None:  # fmt: skip
        self.engine = engine
        self.doc = doc
        self.now = now
        self.budget = budget
        self.ran = 0
        self.ready: deque[str] = deque()
        self.commands: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def result(self) -> Transition:
        return Transition(self.doc, self.commands, self.events, self.ran)

    def guarded(self, work: Any) -> None:
        """Run ``work``; a defect (not an ASL error) fails the execution with States.Runtime
        instead of escaping and leaving its work entry to be retried forever."""
        try:
            work()
        except Exception as exc:  # any defect ends this execution only
            if isinstance(exc, StatesError):
                error, cause = exc.error, exc.cause
            else:
                error, cause = E.RUNTIME, f"Internal error: {type(exc).__name__}: {exc}"
            self.ready.clear()
            self.commands = [c for c in self.commands if c["type"] == "cancel_timer"]
            self.doc.update(status="RUNNING")
            self.doc.pop("output", None)
            self.finish("FAILED", error=error, cause=(cause or "")[:32768] or None)

    # -- bookkeeping -----------------------------------------------------------------------

    def history(self, kind: str, **details: Any) -> int:
        self.doc["event_id"] += 1
        self.events.append({"id": self.doc["event_id"], "type": kind, "timestamp": self.now,
                            **details})  # fmt: skip
        return int(self.doc["event_id"])

    def token(self) -> str:
        self.doc["seq"] += 1
        return f"{self.doc['prefix']}{self.doc['seq']}"

    def callback_token(self) -> str:
        """A task token handed to the outside world: unguessable, so only its holder can
        complete the task (AWS tokens are opaque too)."""
        return f"{self.token()}.{secrets.token_urlsafe(16)}"

    def timer(self, due: float, fid: str | None, kind: str, **extra: Any) -> str:
        tok = self.token()
        self.doc["pending"][tok] = {"frame": fid, "kind": kind, **extra}
        self.commands.append({"type": "timer", "token": tok, "due": due})
        return tok

    def drop(self, tok: str | None) -> None:
        """Forget a pending token; a timer's entry is removed from the timer set too."""
        pending = self.doc["pending"].pop(tok, None) if tok else None
        if pending is not None and pending["kind"] != "task":
            self.commands.append({"type": "cancel_timer", "token": tok})

    def new_frame(self, parent: str | None, loc: list[Any], lang: str, input: Any,
                  variables: dict[str, Any], **extra: Any) -> Doc:  # fmt: skip
        fid = "root" if parent is None else f"f{self.token()}"
        frame: Doc = {"id": fid, "parent": parent, "loc": loc, "lang": lang, "vars": variables,
                      "state": None, "input": input, "status": "RUN", **extra}  # fmt: skip
        self.doc["frames"][fid] = frame
        return frame

    def spec(self, frame: Doc) -> dict[str, Any]:
        return dict(self.engine.machine(frame["loc"])["States"][frame["state"]])

    def context(self, frame: Doc, **extra: Any) -> dict[str, Any]:
        ctx = {
            "Execution": self.doc["execution"],
            "StateMachine": self.doc["state_machine"],
            "State": {
                "Name": frame["state"],
                "EnteredTime": frame.get("entered_time"),
                "RetryCount": frame.get("retry_count", 0),
            },
        }
        ctx.update(extra)
        return ctx

    def scope(self, frame: Doc, spec: dict[str, Any], **ctx: Any) -> Scope:
        lang = str(spec.get("QueryLanguage", frame["lang"]))
        return Scope(frame["state"], spec, lang, frame["input"], self.context(frame, **ctx),
                     frame["vars"])  # fmt: skip

    # -- moving frames ---------------------------------------------------------------------

    def enter(self, frame: Doc, name: str, input: Any) -> None:
        frame.update(state=name, input=input, status="RUN", fresh=True)
        self.ready.append(frame["id"])

    def drain(self) -> None:
        """Run ready frames, up to the per-transition cap and the history quota."""
        while self.ready and self.doc["status"] == "RUNNING":
            if self.doc["event_id"] >= MAX_HISTORY_EVENTS - 1:
                self.finish("FAILED", error=E.RUNTIME, cause=HISTORY_LIMIT_CAUSE)
                return
            if self.ran >= self.budget:
                self.doc["ready"] = list(self.ready)
                self.ready.clear()
                self.commands.append({"type": "continue"})
                return
            frame = self.doc["frames"].get(self.ready.popleft())
            if frame is not None and frame["status"] == "RUN":
                self.ran += 1
                self.execute(frame)

    def execute(self, frame: Doc) -> None:
        spec = self.spec(frame)
        kind = spec["Type"]
        if frame.pop("fresh", False):
            frame["entered"] = self.history(
                f"{kind}StateEntered",
                stateEnteredEventDetails={"name": frame["state"], "input": compact(frame["input"])},
            )
            frame.update(entered_time=iso(self.now), retries={}, retry_count=0)
        scope = self.scope(frame, spec)
        try:
            if kind == "Parallel":
                fanout.start_parallel(self, frame, spec, scope)
            elif kind == "Map":
                fanout.start_map(self, frame, spec, scope)
            else:
                RUNNERS[kind](self, frame, spec, scope)
        except StatesError as err:
            self.state_failed(frame, spec, scope, err)

    def leave(self, frame: Doc, spec: dict[str, Any], output: Any,
              assigned: dict[str, Any], next_name: str | None = None) -> None:  # fmt: skip
        if assigned:
            frame["vars"] = {**frame["vars"], **assigned}
        self.history(
            f"{spec['Type']}StateExited",
            stateExitedEventDetails={"name": frame["state"], "output": compact(output)},
        )
        target = next_name or spec.get("Next")
        if target is None:
            self.frame_done(frame, output)
        else:
            self.enter(frame, target, output)

    def frame_done(self, frame: Doc, output: Any) -> None:
        frame.update(status="DONE", output=output)
        if frame["parent"] is None:
            self.finish("SUCCEEDED", output=output)
        else:
            self.child_finished(frame)

    def frame_failed(self, frame: Doc, error: str | None, cause: str | None) -> None:
        frame.update(status="FAILED", error=error, cause=cause)
        if frame["parent"] is None:
            self.finish("FAILED", error=error, cause=cause)
        else:
            self.child_finished(frame)

    def finish(self, status: str, *, output: Any = None, error: str | None = None,
               cause: str | None = None) -> None:  # fmt: skip
        for tok in list(self.doc["pending"]):
            self.drop(tok)
        self.doc.pop("ready", None)
        self.commands = [c for c in self.commands if c["type"] != "continue"]
        self.doc.update(status=status, end=self.now, frames={}, pending={})
        result: dict[str, Any] = {"type": "finished", "status": status}
        if status == "SUCCEEDED":
            self.doc["output"] = result["output"] = output
            self.history(
                "ExecutionSucceeded", executionSucceededEventDetails={"output": compact(output)}
            )
        else:
            details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
            self.doc.update(error=error, cause=cause)
            result.update(error=error, cause=cause)
            name = {"FAILED": "ExecutionFailed", "TIMED_OUT": "ExecutionTimedOut",
                    "ABORTED": "ExecutionAborted"}[status]  # fmt: skip
            key = name[0].lower() + name[1:] + "EventDetails"
            self.history(name, **{key: details})
        self.commands.append(result)

    # -- errors ----------------------------------------------------------------------------

    def state_failed(self, frame: Doc, spec: dict[str, Any], scope: Scope,
                     err: StatesError) -> None:  # fmt: skip
        cause = err.cause
        if err.runtime:
            cause = (f"An error occurred while executing the state '{frame['state']}' "
                     f"(entered at the event id #{frame.get('entered')}). {cause}")  # fmt: skip
        for i, retrier in enumerate(spec.get("Retry") or []):
            if not E.matches(retrier["ErrorEquals"], err.error):
                continue
            count = frame["retries"].get(str(i), 0)
            if count < retrier.get("MaxAttempts", 3):
                frame["retries"][str(i)] = count + 1
                frame["retry_count"] = frame.get("retry_count", 0) + 1
                delay = backoff_s(retrier, count, self.doc["seq"])
                frame["status"] = "WAIT"
                frame["wait"] = self.timer(self.now + delay, frame["id"], "retry")
                return
            break
        for catcher in spec.get("Catch") or []:
            if not E.matches(catcher["ErrorEquals"], err.error):
                continue
            error_output = {"Error": err.error, "Cause": cause}
            if scope.jsonata:
                output = (scope.expr(catcher["Output"], "Output", errorOutput=error_output)
                          if "Output" in catcher else error_output)  # fmt: skip
                assigned = scope.assignments(error_output, catcher)
            else:
                rp = catcher.get("ResultPath", "$")
                try:
                    output = (
                        frame["input"]
                        if rp is None
                        else paths.assign(rp, frame["input"], error_output)
                    )
                except StatesError as exc:
                    self.frame_failed(frame, exc.error, exc.cause)
                    return
                assigned = scope.assignments(error_output, catcher)
            self.leave(frame, spec, output, assigned, catcher["Next"])
            return
        self.frame_failed(frame, err.error, cause)

    # -- events ----------------------------------------------------------------------------

    def apply(self, event: dict[str, Any], *, then_drain: bool = False) -> None:
        self._apply_event(event)
        if then_drain:
            self.drain()

    def _apply_event(self, event: dict[str, Any]) -> None:
        kind, tok = event.get("type"), event.get("token")
        if kind == "stop":
            self.finish("ABORTED", error=event.get("error"), cause=event.get("cause"))
            return
        pending = self.doc["pending"].get(tok)
        if pending is None:
            return
        frame = self.doc["frames"].get(pending["frame"]) if pending["frame"] else None
        if kind == "task_heartbeat":
            if pending["kind"] == "task" and frame and frame.get("heartbeat_s"):
                self.drop(frame.pop("hb_timer", None))
                frame["hb_timer"] = self.timer(self.now + frame["heartbeat_s"], frame["id"],
                                               "heartbeat")  # fmt: skip
            return
        if kind in ("task_succeeded", "task_failed") and pending["kind"] != "task":
            return
        if kind == "timer" and pending["kind"] == "task":
            return
        self.doc["pending"].pop(tok)
        if pending["kind"] == "exec_timeout":
            self.finish("TIMED_OUT", error=E.TIMEOUT,
                        cause="The execution timed out (TimeoutSeconds).")  # fmt: skip
            return
        if frame is None:
            return
        spec = self.spec(frame)
        scope = self.scope(frame, spec)
        if pending["kind"] == "wait":
            self.leave(frame, spec, frame.pop("wait_output"), {})
        elif pending["kind"] == "retry":
            frame["status"] = "RUN"
            self.ready.append(frame["id"])
        elif pending["kind"] in ("timeout", "heartbeat"):
            self.end_task(frame)
            name = E.TIMEOUT if pending["kind"] == "timeout" else E.HEARTBEAT_TIMEOUT
            self.history("TaskTimedOut", taskTimedOutEventDetails={"error": name})
            self.state_failed(frame, spec, scope, StatesError(name, None))
        elif kind == "task_failed":
            self.end_task(frame)
            error, cause = event.get("error"), event.get("cause")
            self.history("TaskFailed", taskFailedEventDetails={"error": error, "cause": cause})
            self.state_failed(frame, spec, scope, StatesError(error, cause))
        else:
            self.end_task(frame)
            self.task_done(frame, spec, scope, event.get("result"))

    def end_task(self, frame: Doc) -> None:
        for key in ("task", "to_timer", "hb_timer"):
            self.drop(frame.pop(key, None))
        frame["status"] = "RUN"

    def task_done(self, frame: Doc, spec: dict[str, Any], scope: Scope, result: Any) -> None:
        self.history("TaskSucceeded", taskSucceededEventDetails={"output": compact(result)})
        try:
            if len(compact(result).encode()) > MAX_INPUT_BYTES:
                raise StatesError(E.DATA_LIMIT, "The task returned a result over the "
                                  "256 KB service limit.")  # fmt: skip
            result = lambda_result(spec, result)
            self.leave(frame, spec, scope.output(result), scope.assignments(result))
        except StatesError as err:
            self.state_failed(frame, spec, scope, err)

    def child_finished(self, child: Doc) -> None:
        fanout.child_finished(self, child)


def backoff_s(retrier: dict[str, Any], attempt: int, seed: int) -> float:
    """Retry delay: IntervalSeconds * BackoffRate**attempt, capped, with optional FULL jitter."""
    delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** (
        attempt
    )
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, float(retrier["MaxDelaySeconds"]))
    if retrier.get("JitterStrategy") == "FULL":
        delay = random.Random(seed).uniform(0, delay)
    return delay
