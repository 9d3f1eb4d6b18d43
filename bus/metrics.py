"""Prometheus metrics, named after what Lambda users watch in CloudWatch.

Labels are bounded: function, outcome, reason, source, adapter — never event ids.
Durations are histograms in seconds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
_AGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0, 21600.0)

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


class Histogram:
    """A lock-free histogram for the event loop's hot path.

    prometheus-client's Histogram takes a lock and walks its buckets per observe;
    with two observes per invocation that was ~20% of a no-op invocation's cost.
    Only the loop thread observes, and the exporter reads on the same loop.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            total += n
            out.append((repr(float(bound)), total))
        out.append(("+Inf", total + self.counts[-1]))
        return out


class FunctionStats:
    """Per-function invocation counters and histograms, exported by one collector."""

    __slots__ = ("age", "duration", "outcomes")

    def __init__(self) -> None:
        self.outcomes = {"success": 0, "error": 0, "timeout": 0, "throttled": 0}
        self.duration = Histogram(_LATENCY_BUCKETS)
        self.age = Histogram(_AGE_BUCKETS)


_STATS: dict[str, FunctionStats] = {}


def function_stats(function: str) -> FunctionStats:
    st = _STATS.get(function)
    if st is None:
        st = _STATS[function] = FunctionStats()
    return st


class _StatsCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        inv = CounterMetricFamily(
            "lambdabus_invocations", "Handler invocations by outcome.",
            labels=["function", "outcome"],
        )  # fmt: skip
        dur = HistogramMetricFamily(
            "lambdabus_invocation_duration_seconds", "Handler run time.", labels=["function"]
        )
        age = HistogramMetricFamily(
            "lambdabus_event_age_seconds",
            "Source event time to processing done (AsyncEventAge).", labels=["function"],
        )  # fmt: skip
        for fn, st in list(_STATS.items()):
            for outcome, n in st.outcomes.items():
                inv.add_metric([fn, outcome], n)
            dur.add_metric([fn], st.duration.buckets(), st.duration.sum)
            age.add_metric([fn], st.age.buckets(), st.age.sum)
        yield inv
        yield dur
        yield age

    def describe(self) -> Iterator[Metric]:
        return iter(())


REGISTRY.register(_StatsCollector())
