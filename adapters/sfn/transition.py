"""One transition in progress: the execution document being changed and what it emits.

``_Run`` hands out tokens, arms timers, writes history and moves frames from
state to state; what each state does (states.py, fanout.py), Retry/Catch
(retry_catch.py) and incoming events (events.py) work through it. A transition
runs a bounded number of states and an execution a bounded history, as on AWS.
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import errors as E
from . import events, fanout, retry_catch
from .dataflow import Scope, compact
from .errors import StatesError
from .states import RUNNERS

if TYPE_CHECKING:
    from .engine import Engine

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
        """Retry, Catch or fail the frame (retry_catch.py)."""
        retry_catch.state_failed(self, frame, spec, scope, err)

    # -- events ----------------------------------------------------------------------------

    def apply(self, event: dict[str, Any]) -> None:
        """Apply an event, then run what it made runnable."""
        events.apply_event(self, event)
        self.drain()

    def child_finished(self, child: Doc) -> None:
        fanout.child_finished(self, child)
