"""One commit's change to a stored execution: a batch of its events applied by the engine.

Every event a batch holds for one execution goes into one commit: the events share
one budget of states, and the document, parsed for this attempt alone, is changed in
place instead of copied once per event. States left over when the budget runs out
are carried on by a ``continue`` entry. The document's meta follows the engine's
status, and keeps the output, error and cause once the execution ends.
"""

from __future__ import annotations

from typing import Any

from .engine import Engine


def apply_batch(engine: Engine, doc: dict[str, Any], events: list[dict[str, Any]],
                now: float, budget: int) -> Any:  # fmt: skip
    """The new document, history and commands; None if no event changed anything.

    ``budget`` is how many states the commit may run (MAX_STATES_PER_TRANSITION).
    """
    meta = doc["meta"]
    state = doc["engine"]
    commands: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    changed = False
    for event in events:
        if event.get("type") == "stop" and state is None:
            tr = engine.abort_unstarted(now, event.get("error"), event.get("cause"))
        elif event.get("type") == "start":
            if state is not None or meta.get("status", "RUNNING") != "RUNNING":
                continue
            tr = engine.start(
                meta["input"],
                execution={
                    "Id": meta["arn"],
                    "Name": meta["name"],
                    "RoleArn": meta.get("role", ""),
                    "StartTime": meta["start_date"],
                },
                now=now,
                token_prefix=f"{meta['eid']}.",
            )
        elif state is None:
            continue
        else:  # ``doc`` was parsed for this attempt alone: changed in place, no copy
            tr = engine.step(state, event, now, copy_doc=False, max_states=budget)
        budget -= tr.states  # one commit runs about MAX_STATES_PER_TRANSITION states
        if tr.commands or tr.history:
            state, changed = tr.doc, True
            commands += [c for c in tr.commands if c["type"] != "continue"]
            history += tr.history
    if not changed:
        return None
    if state.get("ready"):  # states left over: one more entry carries them on
        commands.append({"type": "continue"})
    meta = {**meta, "status": state["status"]}
    if state["status"] != "RUNNING":
        meta["stop"] = now
        for key in ("output", "error", "cause"):
            if key in state:
                meta[key] = state[key]
    return {"v": doc["v"], "meta": meta, "engine": state}, history, commands
