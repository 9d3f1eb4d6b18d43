"""The template's state machines (``AWS::Serverless::StateMachine``,
``AWS::StepFunctions::StateMachine``) registered where the API and executors find them.

The template loader has already parsed the definition (Definition, DefinitionUri
or DefinitionString) and applied DefinitionSubstitutions; a Task's
``!GetAtt Fn.Arn`` resolved to the function's ARN, whose name part is the
stack's function name, which is how the executor routes it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from adapters.template import schema as s

from .store import ExecutionStore

TYPES = (s.SAM_STATE_MACHINE, s.SFN_STATE_MACHINE)


def template_machines(loaded: Any) -> list[dict[str, Any]]:
    out = []
    for res in loaded.resources.values():
        if res.type not in TYPES:
            continue
        props = res.properties
        kind = props.get("Type") or props.get("StateMachineType") or "STANDARD"
        out.append({"arn": res.arn, "name": res.name, "type": kind, "role": "",
                    "definition": json.dumps(props["Definition"]), "created": time.time(),
                    "logical_id": res.logical_id})  # fmt: skip
    return out


async def register_template_machines(
    store: ExecutionStore, loaded: Any, region: str | None = None
) -> list[dict[str, Any]]:
    """(Re)register every state machine of the template; returns their records."""
    machines = template_machines(loaded)
    for record in machines:
        await store.replace_machine(record)
    return machines
