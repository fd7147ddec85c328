"""Prometheus metrics of the outbox, webhook delivery and the relay.

Counters and histograms are counted where the work happens (the worker, the relay); the gauges
are read from the database by the delivery loop every few seconds. With
``PROMETHEUS_MULTIPROC_DIR`` shared by the API and worker processes of a host, the API's
``/metrics`` shows all of them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_DEPTH = Gauge(
    "kassa_outbox_depth",
    "Events waiting in the outbox, per consumer (webhooks dispatcher, relays)",
    ["consumer"],
    multiprocess_mode="mostrecent",
)
DELIVERIES_PENDING = Gauge(
    "kassa_webhook_deliveries_pending",
    "Webhook deliveries not yet succeeded and still being retried (the delivery queue)",
    multiprocess_mode="mostrecent",
)
DEAD_LETTERS = Gauge(
    "kassa_webhook_dead_letters",
    "Webhook deliveries parked for replay, by status (dead: retries exhausted or endpoint "
    "disabled; parked: Kassa failed processing them)",
    ["status"],
    multiprocess_mode="mostrecent",
)
ATTEMPTS = Counter(
    "kassa_webhook_delivery_attempts_total",
    "Webhook delivery attempts by outcome (succeeded, failed, crashed)",
    ["outcome"],
)
DEAD_LETTERED = Counter(
    "kassa_webhook_dead_lettered_total",
    "Deliveries moved to the dead letters, by reason",
    ["reason"],
)
DELIVERY_LATENCY = Histogram(
    "kassa_webhook_delivery_duration_seconds",
    "Time for one webhook HTTP request, until the receiver's answer",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_LAG = Histogram(
    "kassa_webhook_event_lag_seconds",
    "Time from an event's creation to its successful delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 86400),
)
RELAYED = Counter(
    "kassa_relay_published_total",
    "Events published to NATS JetStream by the relay (duplicate: JetStream had it already)",
    ["result"],
)
