"""The ``States.*`` error names AWS raises, and the exception that carries one.

A ``runtime`` error (States.Runtime and its kin) ends the execution whatever
Retry and Catch say, as AWS does; the others are matched by ``ErrorEquals``.
"""

from __future__ import annotations

ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
RUNTIME = "States.Runtime"
NO_CHOICE = "States.NoChoiceMatched"
INTRINSIC_FAILURE = "States.IntrinsicFailure"
PARAMETER_PATH_FAILURE = "States.ParameterPathFailure"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
REFERENCE_PATH_CONFLICT = "States.ReferencePathConflict"
QUERY_EVALUATION = "States.QueryEvaluationError"
DATA_LIMIT = "States.DataLimitExceeded"
BRANCH_FAILED = "States.BranchFailed"
PERMISSIONS = "States.Permissions"

UNCATCHABLE = frozenset({RUNTIME, DATA_LIMIT})
"""Errors no Retry or Catch handles (AWS: they end the execution)."""


class StatesError(Exception):
    """An ASL error with AWS's name and cause; ``runtime`` ones get the state prefix."""

    def __init__(self, error: str | None, cause: str | None, *, runtime: bool = False) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause
        self.runtime = runtime


def matches(error_equals: list[str], error: str | None) -> bool:
    """Does a Retrier's or Catcher's ``ErrorEquals`` cover ``error``?"""
    if error is None or error in UNCATCHABLE:
        return False
    for name in error_equals:
        if name == error:
            return True
        if name == ALL:
            return True
        if name == TIMEOUT and error == HEARTBEAT_TIMEOUT:
            return True
        if (
            name == TASK_FAILED
            and error not in (TIMEOUT, HEARTBEAT_TIMEOUT)
            and not error.startswith("States.")
        ):
            return True
    return False
