"""The ASL interpreter as a deterministic transition function over one JSON document.

``Engine.start(input, ...)`` and ``Engine.step(doc, event, now)`` return a
``Transition``: the new execution document, the commands to carry out
(``invoke`` a task, arm a ``timer``, ``finished``) and the history events it
produced. Nothing sleeps and nothing awaits: Wait and Retry back-off are timers,
Map iterations and Parallel branches are child frames inside the document, so
the whole execution can be persisted after every transition and resumed by
any process. The transition in progress is ``_Run`` (transition.py).
"""

from __future__ import annotations

import copy
from typing import Any

from .dataflow import compact
from .transition import MAX_STATES_PER_TRANSITION, Doc, Transition, _Run


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
        run.guarded(lambda: run.apply(event))
        return run.result()

    def abort_unstarted(self, now: float, error: str | None, cause: str | None) -> Transition:
        """StopExecution of an execution whose start was not applied yet: it ends ABORTED
        without running a state (its later ``start`` then finds a finished document)."""
        doc: Doc = {"status": "RUNNING", "seq": 0, "event_id": 0, "prefix": "", "frames": {},
                    "pending": {}, "start": now}  # fmt: skip
        run = _Run(self, doc, now)
        run.finish("ABORTED", error=error, cause=cause)
        return run.result()
