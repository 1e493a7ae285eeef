"""Prometheus metrics shared by every service (exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "govshare_http_requests_total", "HTTP requests served", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "govshare_http_request_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RELAY_PUBLISHED = Counter("govshare_outbox_published_total", "events published by the outbox relay", ["schema"])
OUTBOX_LAG = Gauge("govshare_outbox_unpublished", "events in the outbox not yet published", ["schema"])
EVENTS_HANDLED = Counter("govshare_events_handled_total", "events handled by a consumer", ["service", "source", "via"])
CONSUMER_LAG = Gauge(
    "govshare_consumer_lag", "events a source has sequenced that this service has not handled", ["service", "source"]
)
CONSUMER_ASSIGNED = Gauge(
    "govshare_consumer_assigned_partitions",
    "partitions of a source's topic the broker has assigned to this replica (0: not in the group yet, or Kafka "
    "away, and the feed carries its events)",
    ["service", "source"],
)
GAPS_FILLED = Counter(
    "govshare_feed_gap_events_total", "events read from a source's feed to fill a gap", ["service", "source"]
)
JOB_RUNS = Counter("govshare_job_runs_total", "periodic job runs", ["service", "job", "outcome"])
RELAY_LAG = Gauge(
    "govshare_outbox_relay_lag_seconds", "age of the oldest event in the outbox not yet published", ["schema"]
)
GAP_FILLS = Counter(
    "govshare_feed_gap_fills_total",
    "times a hole in a source partition was filled from its feed",
    ["service", "source"],
)
CATCH_UP_READS = Counter(
    "govshare_feed_catch_up_reads_total",
    "reads of a source's feed by a consumer catching up (Kafka silent or behind)",
    ["service", "source"],
)
QUARANTINED = Counter(
    "govshare_events_quarantined_total", "events set aside because their handler failed", ["service", "source"]
)
QUARANTINE_HELD = Gauge(
    "govshare_events_quarantine_held", "quarantined events waiting for a retry or a skip", ["service", "source"]
)
EVENTS_REFUSED = Counter(
    "govshare_events_refused_total",
    "messages on the broker refused as not genuine (bad signature, wrong source, malformed)",
    ["service", "source", "reason"],
)
SNAPSHOT_REBUILDS = Counter(
    "govshare_feed_snapshot_rebuilds_total",
    "times a consumer behind the source's retention rebuilt a partition from the source's kept snapshot",
    ["service", "source"],
)
