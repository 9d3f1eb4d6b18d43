"""State machine ``Events`` as triggers of a built-in starter function.

A state machine's Schedule, EventBridgeRule or Api event is routed like a
function's: the loader gives the machine a function ``<LogicalId>Starter``
(``starter/sfn_starter.py``) whose triggers are the machine's events, so the
scheduler, EventBridge rules and the API gateway start executions without
knowing about state machines. All starters share one worker process group.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters.template import schema as s
from adapters.template.errors import Invalid, blame
from adapters.template.functions import BuiltFunction, build_function
from adapters.template.loaded import Resource

MACHINES_VARIABLE = "LAMBDABUS_SFN_STARTERS"
"""JSON ``{function name: state machine ARN}`` (read by ``starter/sfn_starter.py``, which
is imported only by the starter's worker: loading a template must not import botocore
into a worker before its function's own dependencies are on the path)."""

CODE = Path(__file__).resolve().parent / "starter"
GROUP = "lambdabus-sfn-starters"


def starter_name(logical_id: str) -> str:
    return f"{logical_id}Starter"


def starters(resources: Mapping[str, Resource], site: Any, warn_for: Callable[[str], Any],
             taken: set[str]) -> list[BuiltFunction]:  # fmt: skip
    """One starter function per state machine that declares Events."""
    machines = {starter_name(lid): r for lid, r in resources.items()
                if r.type == s.SAM_STATE_MACHINE and r.properties.get("Events")}  # fmt: skip
    env = json.dumps({name: r.arn for name, r in machines.items()}, sort_keys=True)
    built = []
    for name, res in machines.items():
        with blame(res.logical_id):
            if name in taken or name in resources:
                raise Invalid("Events", f"needs a function named {name}, which already exists")
            props = {"Handler": "sfn_starter.handler", "CodeUri": str(CODE), "Timeout": 30,
                     "Environment": {"Variables": {MACHINES_VARIABLE: env}},
                     "Events": res.properties["Events"]}  # fmt: skip
            built.append(build_function(name, props, {"group": GROUP}, site,
                                        warn_for(res.logical_id)))  # fmt: skip
    return built
