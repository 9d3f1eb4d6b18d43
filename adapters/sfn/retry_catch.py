"""What a failed state does: Retry it after a back-off, Catch to another state, or fail its frame.

The back-off is a timer, not a sleep, and FULL jitter is seeded by the document's
token sequence, so the transition stays deterministic.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from . import errors as E
from . import paths
from .dataflow import Scope
from .errors import StatesError

if TYPE_CHECKING:
    from .transition import Doc, _Run


def state_failed(run: _Run, frame: Doc, spec: dict[str, Any], scope: Scope,
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
            delay = backoff_s(retrier, count, run.doc["seq"])
            frame["status"] = "WAIT"
            frame["wait"] = run.timer(run.now + delay, frame["id"], "retry")
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
                    frame["input"] if rp is None else paths.assign(rp, frame["input"], error_output)
                )
            except StatesError as exc:
                run.frame_failed(frame, exc.error, exc.cause)
                return
            assigned = scope.assignments(error_output, catcher)
        run.leave(frame, spec, output, assigned, catcher["Next"])
        return
    run.frame_failed(frame, err.error, cause)


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
