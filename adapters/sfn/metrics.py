"""Prometheus metrics of workflow executions (label: the state machine's name, bounded
by the stack's definitions; never execution names or ids)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

EXECUTIONS = Counter(
    "lambdabus_sfn_executions",
    "Workflow executions by outcome (started, succeeded, failed, timed_out, aborted).",
    ["state_machine", "outcome"],
)
DURATION = Histogram(
    "lambdabus_sfn_execution_duration_seconds",
    "Start to end of finished workflow executions.",
    ["state_machine"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 86400),
)
TRANSITIONS = Counter(
    "lambdabus_sfn_state_transitions", "States entered by workflow executions.", ["state_machine"]
)
RECLAIMED = Counter("lambdabus_sfn_work_reclaimed", "Work entries taken over from a dead executor.")
DEAD_LETTERED = Counter(
    "lambdabus_sfn_work_dead_lettered",
    "Work entries dropped after too many failed deliveries (logged with their id).",
)


def observe(meta: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Count one committed transition of an execution."""
    machine = meta.get("machine_name", "")
    entered = 0
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered += 1
        elif kind == "ExecutionStarted":
            EXECUTIONS.labels(machine, "started").inc()
        elif kind.startswith("Execution"):
            outcome = {
                "ExecutionSucceeded": "succeeded",
                "ExecutionFailed": "failed",
                "ExecutionTimedOut": "timed_out",
                "ExecutionAborted": "aborted",
            }.get(kind)
            if outcome:
                EXECUTIONS.labels(machine, outcome).inc()
                if meta.get("stop") and meta.get("start"):
                    DURATION.labels(machine).observe(max(0.0, meta["stop"] - meta["start"]))
    if entered:
        TRANSITIONS.labels(machine).inc(entered)
