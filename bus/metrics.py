"""Prometheus metrics, named after what Lambda users watch in CloudWatch.

Labels are bounded: function, outcome, reason, source, adapter — never event ids.
Durations are histograms in seconds.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
_AGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 21600.0)

INVOCATIONS = Counter(
    "lambdabus_invocations", "Handler invocations by outcome.", ["function", "outcome"]
)
DURATION = Histogram(
    "lambdabus_invocation_duration_seconds", "Handler run time.", ["function"],
    buckets=_LATENCY_BUCKETS,
)  # fmt: skip
EVENT_AGE = Histogram(
    "lambdabus_event_age_seconds", "Source event time to processing done (AsyncEventAge).",
    ["function"], buckets=_AGE_BUCKETS,
)  # fmt: skip
INFLIGHT = Gauge(
    "lambdabus_inflight_invocations", "Invocations running now in this process.", ["function"]
)
BACKLOG = Gauge(
    "lambdabus_backlog_events", "Entries not yet delivered to any worker (group lag).", ["function"]
)
PENDING = Gauge(
    "lambdabus_pending_events", "Entries delivered to a worker and not yet acknowledged.",
    ["function"],
)  # fmt: skip
DELAYED = Gauge("lambdabus_delayed_events", "Retries waiting for their backoff.", ["function"])
DEAD_LETTER_DEPTH = Gauge(
    "lambdabus_dead_letter_events", "Entries in the dead-letter stream.", ["function"]
)
RETRIES = Counter("lambdabus_retries", "Events scheduled for another attempt.", ["function"])
DEAD_LETTERS = Counter(
    "lambdabus_dead_letters", "Events dead-lettered, by reason.", ["function", "reason"]
)
EVENTS_PUBLISHED = Counter(
    "lambdabus_events_published", "Events added to a function's stream.", ["source", "function"]
)
RECLAIMED = Counter(
    "lambdabus_reclaimed_events", "Entries taken over from a dead or stuck consumer.", ["function"]
)
RECLAIM_DELETED = Counter(
    "lambdabus_reclaim_deleted_events",
    "Pending entries found deleted from the stream when reclaimed (data lost upstream).",
    ["function"],
)
EXPIRED = Counter(
    "lambdabus_expired_invocations",
    "Synchronous invocations dropped because the caller's deadline had passed.", ["function"],
)  # fmt: skip
ABANDONED = Counter(
    "lambdabus_abandoned_invocations",
    "Thread handlers still running past their Timeout (result discarded).", ["function"],
)  # fmt: skip
THROTTLED = Counter(
    "lambdabus_throttled_invocations",
    "Invocations that had to wait for ReservedConcurrentExecutions.", ["function"],
)  # fmt: skip
UNDECODABLE = Counter(
    "lambdabus_undecodable_entries", "Stream entries that were not envelopes.", ["function"]
)
SOURCE_LAG = Gauge(
    "lambdabus_source_lag_seconds", "Age of the oldest unread source event.", ["adapter"]
)
ADAPTER_ERRORS = Counter("lambdabus_adapter_errors", "Adapter failures.", ["adapter"])
