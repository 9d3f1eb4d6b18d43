"""Prometheus metrics of the stream adapters (labels bounded by the template).

``lambdabus_source_lag_seconds{adapter}`` (Lambda's IteratorAge) and
``lambdabus_adapter_errors_total{adapter}`` come from :mod:`adapters.base`;
records published are ``lambdabus_events_published_total{source,function}``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SHARDS_OWNED = Gauge(
    "lambdabus_stream_shards_owned", "Shards this replica holds the lease of.", ["adapter"]
)
RECORDS_READ = Counter(
    "lambdabus_stream_records_read", "Stream records read from the source.", ["adapter"]
)
RECOVERIES = Counter(
    "lambdabus_stream_recoveries",
    "Reads restarted from the checkpoint, by reason (expired_iterator, trimmed, "
    "shard_gone, throttled).",
    ["adapter", "reason"],
)
SKIPPED = Counter(
    "lambdabus_stream_records_skipped",
    "Records never published, by reason (malformed, too_large, trimmed: counted when "
    "the trimmed range is known to hold records).",
    ["adapter", "reason"],
)
FAILURES_SENT = Counter(
    "lambdabus_stream_failures_sent",
    "OnFailure records (DDBStreamBatchInfo) sent to a queue or topic.", ["adapter"],
)  # fmt: skip
