"""The messaging layer's Prometheus metrics (the official ``prometheus_client``).

Defined once here; the modules that do the work count. Names follow the
Prometheus conventions: ``portal_`` namespace, base units (seconds),
``_total`` for counters, labels for the dimensions (``subscriber``,
``destination``, ``reason``). The README's "Operating the portal" lists each
with its meaning; the state of the log itself (backlog, oldest undelivered
event, relay heartbeat, stored dead letters) is read from the database when
the web process is scraped (``portal.observability.collectors``).

In gunicorn and Celery's prefork pool every process writes its own files
(multiprocess mode, ``portal.observability.multiproc``); gauges say how
processes combine.
"""

import bisect

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No *_created series: they double what a single-process scrape reports and
# nothing here reads them (multiprocess mode has none anyway).
disable_created_metrics()

# Seconds: from a millisecond to an hour.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0, 900.0, 3600.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)

# --- The log and the relay -----------------------------------------------------

EVENTS_LOGGED = Counter(
    "portal_event_log_events_logged_total",
    "Events written to the event log, by where they came from.",
    ["origin"],
)
EVENTS_ROUTED = Counter(
    "portal_relay_events_routed_total",
    "Events RabbitMQ confirmed to a destination (a subscriber, or broadcast).",
    ["destination"],
)
ROUTE_FAILURES = Counter(
    "portal_relay_route_failures_total",
    "Messages to a destination that were not confirmed (nack, unroutable, "
    "broker away); their events stay owed.",
    ["destination"],
)
CONFIRM_SECONDS = Histogram(
    "portal_relay_publish_confirm_seconds",
    "From publishing a pass's messages to RabbitMQ's last confirm.",
    buckets=LATENCY_BUCKETS,
)
PASS_SECONDS = Histogram(
    "portal_relay_pass_duration_seconds",
    "One routing pass: select, publish with confirms, record.",
    buckets=LATENCY_BUCKETS,
)
PASSES = Counter(
    "portal_relay_passes_total",
    "Routing passes that found rows, by outcome (ok: every destination "
    "confirmed; failed: some stay owed).",
    ["outcome"],
)
QUEUE_MESSAGES = Gauge(
    "portal_subscriber_queue_messages",
    "Messages ready in a subscriber's task queue, as the relay last saw them.",
    ["subscriber"],
    multiprocess_mode="max",
)
QUEUE_CONSUMERS = Gauge(
    "portal_subscriber_queue_consumers",
    "Consumers (worker processes' channels) on a subscriber's task queue, as "
    "the relay last saw them.",
    ["subscriber"],
    multiprocess_mode="max",
)
EVENTS_PRUNED = Counter(
    "portal_event_log_events_pruned_total",
    "Log rows removed by retention (every subscriber had applied them).",
)

# --- Subscribers -----------------------------------------------------------------

APPLIED = Counter(
    "portal_subscriber_events_applied_total",
    "Events a subscriber applied (new effects).",
    ["subscriber"],
)
DUPLICATES = Counter(
    "portal_subscriber_duplicates_skipped_total",
    "Events a subscriber had applied before and skipped.",
    ["subscriber"],
)
RETRIES = Counter(
    "portal_subscriber_retries_total",
    "Task messages a subscriber retries after a transient failure.",
    ["subscriber"],
)
BATCH_EVENTS = Histogram(
    "portal_subscriber_batch_size_events",
    "Events per task message a subscriber handled.",
    ["subscriber"],
    buckets=BATCH_BUCKETS,
)
BATCH_SECONDS = Histogram(
    "portal_subscriber_batch_duration_seconds",
    "Time a subscriber's task took for one task message.",
    ["subscriber"],
    buckets=LATENCY_BUCKETS,
)
EVENT_TIME_LAG = Histogram(
    "portal_subscriber_event_time_lag_seconds",
    "From an event's own time to its application by a subscriber.",
    ["subscriber"],
    buckets=LATENCY_BUCKETS,
)
COMMIT_LAG = Histogram(
    "portal_subscriber_commit_lag_seconds",
    "From an event's commit to the log to its application by a subscriber.",
    ["subscriber"],
    buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "portal_dead_letters_stored_total",
    "Dead letters stored, by the subscriber that gave up (empty: refused on "
    "the way in) and reason.",
    ["subscriber", "reason"],
)

# --- Ingestion from other services ---------------------------------------------

INGESTED = Counter(
    "portal_ingest_messages_total",
    "Messages from other services on portal.events, by outcome (accepted, "
    "duplicate, refused) and the refusal's reason.",
    ["outcome", "reason"],
)
HTTP_INGEST = Counter(
    "portal_http_ingest_requests_total",
    "POST /api/events/ requests, by response status code.",
    ["status"],
)


def histogram_observe_many(histogram, values: list[float]) -> None:
    """Observe many values at once (one lock and file write per bucket, not
    per value: a batch of a thousand events observes its lags cheaply)."""
    if not values:
        return
    histogram._raise_if_not_observable()
    upper = histogram._upper_bounds
    counts = [0] * len(upper)
    for value in values:
        counts[bisect.bisect_left(upper, value)] += 1
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(sum(values))


def metrics_initialize_subscriber(name: str) -> None:
    """Export a subscriber's series at 0 before its first event, so that
    rates and alerts see them from the start (Prometheus's advice)."""
    for counter in (APPLIED, DUPLICATES, RETRIES):
        counter.labels(name)
    for histogram in (BATCH_EVENTS, BATCH_SECONDS, EVENT_TIME_LAG, COMMIT_LAG):
        histogram.labels(name)


def metrics_initialize_destinations(names: list[str]) -> None:
    for name in names:
        EVENTS_ROUTED.labels(name)
        ROUTE_FAILURES.labels(name)
    for outcome in ("ok", "failed"):
        PASSES.labels(outcome)
