"""Prometheus metrics. With several API worker processes, ``PROMETHEUS_MULTIPROC_DIR`` makes
``/metrics`` aggregate all of them (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "kassa_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "kassa_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Connector resilience (connectors/breaker.py, connectors/policy.py). Gauges take the most
# recent value any process wrote: a breaker's state is shared, whoever saw it last is right.
BREAKER_STATE = Gauge(
    "kassa_connector_breaker_state",
    "Circuit breaker state per connector: 0 closed, 1 open, 2 half-open",
    ["connector"],
    multiprocess_mode="mostrecent",
)
BREAKER_TRANSITIONS = Counter(
    "kassa_connector_breaker_transitions_total",
    "Circuit breaker state changes made by this process",
    ["connector", "from_state", "to_state"],
)
CONNECTOR_RETRIES = Counter(
    "kassa_connector_retries_total",
    "Authorisations resent to the same PSP under the same reference",
    ["connector", "code"],
)
PAYMENT_CASCADES = Counter(
    "kassa_payment_cascades_total",
    "Attempts failed over to the next routing candidate, by the connector left and why",
    ["connector", "code"],
)
CHARGES_FLAGGED = Counter(
    "kassa_charges_flagged_for_review_total",
    "Attempts whose outcome stayed unknown after every status inquiry",
)
CHARGES_IN_REVIEW = Gauge(
    "kassa_charges_in_review",
    "Attempts with an unknown outcome waiting for an operator",
    multiprocess_mode="mostrecent",
)

_log = logging.getLogger(__name__)
_on_scrape: list[Callable[[], Awaitable[None]]] = []


def on_scrape(refresh: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run ``refresh`` before each ``/metrics`` answer (gauges of shared state read from the
    database); returns the function that unregisters it."""
    _on_scrape.append(refresh)
    return lambda: _on_scrape.remove(refresh) if refresh in _on_scrape else None


async def refresh() -> None:
    """Update the gauges that read shared state; a failure leaves the last values."""
    for fn in list(_on_scrape):
        try:
            await fn()
        except Exception:
            _log.exception("metrics refresh failed")


def render() -> tuple[bytes, str]:
    """The exposition text for ``/metrics`` and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
