"""Parallel branches and Map iterations as child frames of the execution document.

A fan-out keeps its pending inputs, its results by index and the ids of the
children running now; at most ``MaxConcurrency`` children run at once and the
next one starts when one finishes. The first child to fail fails the state and
cancels its siblings (their pending tokens are dropped, so late results are
ignored). A finished child's frame is deleted: its result lives in the parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import jsonata_eval, paths
from .dataflow import Scope, compact, template
from .errors import QUERY_EVALUATION, RUNTIME, StatesError

if TYPE_CHECKING:
    from .transition import Doc, _Run


def _runtime(msg: str) -> StatesError:
    return StatesError(RUNTIME, msg, runtime=True)


def start_parallel(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    args = scope.arguments(scope.effective_input())
    n = len(spec["Branches"])
    locs = [[*frame["loc"], "States", frame["state"], "Branches", i] for i in range(n)]
    _start(run, frame, locs, [args] * n, 0)


def start_map(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope) -> None:
    effective = scope.effective_input()
    items = _items(spec, scope, effective)
    limit = _max_concurrency(spec, scope, effective)
    inputs: list[Any] = []
    selector = spec.get("ItemSelector", None if scope.jsonata else spec.get("Parameters"))
    for i, item in enumerate(items):
        if selector is None:
            inputs.append(item)
            continue
        ctx = run.context(frame, Map={"Item": {"Index": i, "Value": item}})
        if scope.jsonata:
            inputs.append(
                jsonata_eval.evaluate_template(
                    selector, {"input": scope.raw, "context": ctx}, scope.variables, "ItemSelector"
                )
            )
        else:
            inputs.append(template(selector, effective, ctx, scope.variables))
    key = "ItemProcessor" if "ItemProcessor" in spec else "Iterator"
    loc = [*frame["loc"], "States", frame["state"], key]
    _start(run, frame, [loc] * len(inputs), inputs, limit)


def _items(spec: dict[str, Any], scope: Scope, effective: Any) -> list[Any]:
    if scope.jsonata:
        raw = spec.get("Items")
        items = scope.expr(raw, "Items") if "Items" in spec else scope.raw
        if not isinstance(items, list):
            text = (
                jsonata_eval.expression_text(str(raw)) if jsonata_eval.is_expression(raw) else raw
            )
            raise StatesError(
                QUERY_EVALUATION,
                f"The JSONata expression '{text}' specified for the field 'Items' returned an "
                f"unexpected result type. Expected 'array', but was "
                f"'{jsonata_eval.type_name(items)}' for value: {compact(items)}",
                runtime=True,
            )
        return items
    items_path = spec.get("ItemsPath", "$")
    items = paths.require(items_path, effective, scope.context, scope.variables)
    if not isinstance(items, list):
        raise _runtime(f"Item Path '{items_path}' does not reference an array: "
                       f"{compact(items)}")  # fmt: skip
    return items


def _max_concurrency(spec: dict[str, Any], scope: Scope, effective: Any) -> int:
    if "MaxConcurrencyPath" in spec:
        path = spec["MaxConcurrencyPath"]
        value = paths.require(path, effective, scope.context, scope.variables)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _runtime(f"The MaxConcurrencyPath field refers to value {compact(value)} "
                           f"which is not a valid integer: {path}")  # fmt: skip
        return value
    value = spec.get("MaxConcurrency", 0)
    if scope.jsonata:
        value = scope.expr(value, "MaxConcurrency")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _runtime(f"MaxConcurrency must be a non-negative integer, got {compact(value)}")
    return value


def _start(run: _Run, frame: Doc, locs: list[list[Any]], inputs: list[Any], limit: int) -> None:
    n = len(inputs)
    frame["status"] = "CHILDREN"
    frame["fan"] = {"locs": locs, "inputs": inputs, "next": 0, "done": 0, "limit": limit,
                    "results": [None] * n, "kids": {}}  # fmt: skip
    if n == 0:
        _complete(run, frame)
        return
    launch(run, frame)


def launch(run: _Run, frame: Doc) -> None:
    fan = frame["fan"]
    while fan["next"] < len(fan["inputs"]) and (
        not fan["limit"] or len(fan["kids"]) < fan["limit"]
    ):
        i = fan["next"]
        fan["next"] += 1
        machine = run.engine.machine(fan["locs"][i])
        lang = str(machine.get("QueryLanguage", frame["lang"]))
        child = run.new_frame(frame["id"], fan["locs"][i], lang, fan["inputs"][i],
                              dict(frame["vars"]))  # fmt: skip
        fan["inputs"][i] = None
        fan["kids"][child["id"]] = i
        run.enter(child, machine["StartAt"], child["input"])


def child_finished(run: _Run, child: Doc) -> None:
    frames = run.doc["frames"]
    frames.pop(child["id"], None)
    parent = frames.get(child["parent"])
    if parent is None or parent["status"] != "CHILDREN" or child["id"] not in parent["fan"]["kids"]:
        return
    fan = parent["fan"]
    index = fan["kids"].pop(child["id"])
    if child["status"] == "FAILED":
        cancel_children(run, parent)
        parent.pop("fan")
        parent["status"] = "RUN"
        spec = run.spec(parent)
        run.state_failed(parent, spec, run.scope(parent, spec),
                         StatesError(child["error"], child["cause"]))  # fmt: skip
        return
    fan["results"][index] = child["output"]
    fan["done"] += 1
    if fan["done"] == len(fan["results"]):
        _complete(run, parent)
    else:
        launch(run, parent)


def _complete(run: _Run, frame: Doc) -> None:
    result = frame.pop("fan")["results"]
    frame["status"] = "RUN"
    spec = run.spec(frame)
    scope = run.scope(frame, spec)
    try:
        output = scope.output(result)
        assigned = scope.assignments(result)
    except StatesError as err:
        run.state_failed(frame, spec, scope, err)
        return
    run.leave(frame, spec, output, assigned)


def cancel_children(run: _Run, frame: Doc) -> None:
    """Drop every descendant of ``frame`` and every token they wait on."""
    frames = run.doc["frames"]
    gone: set[str] = set()
    todo = list(frame["fan"]["kids"])
    while todo:
        fid = todo.pop()
        child = frames.pop(fid, None)
        if child is None:
            continue
        gone.add(fid)
        todo.extend(child.get("fan", {}).get("kids", {}))
    frame["fan"]["kids"] = {}
    pending = run.doc["pending"]
    for tok in [t for t, p in pending.items() if p.get("frame") in gone]:
        run.drop(tok)
