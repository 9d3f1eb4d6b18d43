"""Custom-event counters: what PutEvents accepted, refused, and whether rules matched.

``outcome`` is one of ``accepted``, ``rejected`` (per-entry errors), ``matched`` (an
accepted event at least one rule routed) and ``unmatched``: bounded by construction.
"""

from __future__ import annotations

from prometheus_client import Counter

CUSTOM_EVENTS = Counter(
    "lambdabus_custom_events",
    "PutEvents entries by outcome: accepted, rejected, matched, unmatched.",
    ["outcome"],
)
OUTCOMES = ("accepted", "rejected", "matched", "unmatched")
for _outcome in OUTCOMES:  # every series exists from the start, at 0
    CUSTOM_EVENTS.labels(_outcome)


def count(**outcomes: int) -> None:
    for outcome, n in outcomes.items():
        if n:
            CUSTOM_EVENTS.labels(outcome).inc(n)
