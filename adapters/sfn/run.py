"""Run one execution locally: ``python -m adapters.sfn.run DEFINITION_FILE INPUT_FILE``.

Prints ``{"status": ..., "output" | "error"/"cause": ...}``. Timers fire at once
on a virtual clock (a Wait of an hour takes no time). Task states need the bus:
here they fail with ``lambdabus.NoFunctions`` unless ``--echo`` makes every task
return its payload, which is enough to check data flow.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from typing import Any

from .definition import DefinitionError, InputError, load, parse_input
from .engine import Engine, Transition

MAX_TRANSITIONS = 1_000_000


def run_local(definition: dict[str, Any], input: Any, *, echo: bool = False,
              now: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Run to the end on a virtual clock; returns the execution's result."""
    clock = time.time() if now is None else now
    engine = Engine(definition, {"Id": "arn:aws:states:local:000000000000:stateMachine:local",
                                 "Name": "local"})  # fmt: skip
    execution = {
        "Id": "arn:aws:states:local:000000000000:execution:local:run",
        "Name": "run",
        "RoleArn": "arn:aws:iam::000000000000:role/local",
        "StartTime": clock,
    }
    tr = engine.start(input, execution=execution, now=clock)
    timers: list[tuple[float, int, str]] = []
    events: list[dict[str, Any]] = []
    n = 0
    while True:
        result = _collect(tr, timers, events, echo)
        if result is not None:
            return result
        if events:
            event = events.pop(0)
        elif timers:
            due, _, tok = heapq.heappop(timers)
            clock = max(clock, due)
            event = {"type": "timer", "token": tok}
        else:
            return {"status": "FAILED", "error": "lambdabus.Stuck", "cause": "nothing pending"}
        n += 1
        if n > MAX_TRANSITIONS:
            return {"status": "FAILED", "error": "lambdabus.TooManyTransitions", "cause": ""}
        tr = engine.step(tr.doc, event, clock)


def _collect(tr: Transition, timers: list[tuple[float, int, str]],
             events: list[dict[str, Any]], echo: bool) -> dict[str, Any] | None:  # fmt: skip
    for cmd in tr.commands:
        if cmd["type"] == "finished":
            out = {"status": cmd["status"]}
            if cmd["status"] == "SUCCEEDED":
                out["output"] = cmd["output"]
            else:
                out.update(error=cmd.get("error"), cause=cmd.get("cause"))
            return out
        if cmd["type"] == "timer":
            heapq.heappush(timers, (cmd["due"], len(timers) + len(events), cmd["token"]))
        elif cmd["type"] == "continue":  # the transition hit its cap of states: go on
            events.append({"type": "continue"})
        elif cmd["type"] == "invoke":
            if echo:
                events.append({"type": "task_succeeded", "token": cmd["token"],
                               "result": cmd["payload"]})  # fmt: skip
            else:
                events.append({"type": "task_failed", "token": cmd["token"],
                               "error": "lambdabus.NoFunctions",
                               "cause": "the local runner has no functions"})  # fmt: skip
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m adapters.sfn.run", description=__doc__)
    ap.add_argument("definition_file")
    ap.add_argument("input_file")
    ap.add_argument("--echo", action="store_true", help="tasks return their payload")
    args = ap.parse_args(argv)
    try:
        with open(args.definition_file, encoding="utf-8") as f:
            definition = load(f.read())
        with open(args.input_file, encoding="utf-8") as f:
            data = parse_input(f.read())
    except (DefinitionError, InputError, OSError) as exc:
        print(json.dumps({"status": "INVALID", "error": type(exc).__name__, "cause": str(exc)}))
        return 2
    print(json.dumps(run_local(definition, data, echo=args.echo)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
