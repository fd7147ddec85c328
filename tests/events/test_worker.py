"""`kassa worker` processes delivering webhooks: a worker killed with SIGKILL mid-delivery
loses no event, and /metrics (multiprocess mode, shared by the API and the worker) shows the
queue, latency, failures and dead letters."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from kassa.config import get_settings
from tests.conftest import start_api, stop_api
from tests.events.conftest import emit
from tests.events.receiver import Receiver
from tests.factories import stripe_client

pytestmark = pytest.mark.slow


def _start_worker(database_url, log_path, **env):
    with open(log_path, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "kassa", "worker"],
            env={**os.environ, "KASSA_DATABASE_URL": database_url, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_delivery_loses_no_event(
    db, api_url, merchant, receivers, database_url, tmp_path
):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    receiver = Receiver(delay=0.3).start()
    receivers.append(receiver)
    we = stripe_client(api_url, key).v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["*"]}
    )
    receiver.secrets = [we.secret]
    ids = await emit(db, mid, n=40)
    # Short leases so the killed worker's in-flight deliveries come due again quickly.
    env = {"KASSA_WEBHOOK_LEASE_SECONDS": "3", "KASSA_WEBHOOK_TIMEOUT_SECONDS": "2"}
    first = _start_worker(database_url, tmp_path / "w1.log", **env)
    try:
        await _until(lambda: len(receiver.ids()) >= 5, 30, "the first deliveries")
        first.send_signal(signal.SIGKILL)
        first.wait()
        in_flight = receiver.concurrent
    finally:
        _stop(first)
    assert len(set(receiver.ids())) < len(ids)
    second = _start_worker(database_url, tmp_path / "w2.log", **env)
    try:
        # Recorded as delivered, including those the killed worker sent but never recorded
        # (they are sent again once their lease ends).
        deadline = time.monotonic() + 60
        while await _unfinished(db, we.id):
            assert time.monotonic() < deadline, "deliveries still pending"
            await asyncio.sleep(0.2)
    finally:
        _stop(second)
    assert set(ids) <= set(receiver.ids())
    assert receiver.rejected == []
    # At least once: everything arrived; only what was in flight at the kill may arrive twice.
    duplicates = sum(n - 1 for n in receiver.counts().values())
    assert duplicates <= in_flight + get_settings().webhook_endpoint_concurrency


async def _unfinished(db, endpoint_id: str) -> int:
    async with db.connection() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 "
            "AND status <> 'succeeded'",
            endpoint_id,
        )


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else r"(?:\{\})?")
    match = re.search(r"^" + pattern + r" ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


async def test_metrics_show_queue_latency_failures_and_dead_letters(
    db, merchant, receivers, database_url, tmp_path, log_dir
):
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    api = start_api(database_url, log_dir, env)
    worker = None
    try:
        key, mid = merchant.key("secret"), merchant.merchant["id"]
        client = stripe_client(api.url, key)
        good, bad = Receiver().start(), Receiver().start()
        receivers += [good, bad]
        ok = client.v1.webhook_endpoints.create({"url": good.url, "enabled_events": ["*"]})
        failing = client.v1.webhook_endpoints.create({"url": bad.url, "enabled_events": ["*"]})
        good.secrets, bad.status = [ok.secret], 503
        parked = client.v1.webhook_endpoints.create(
            {"url": "http://127.0.0.1:9/x", "enabled_events": ["*"]}
        )
        ids = await emit(db, mid, n=3)
        # Dead letters: disabling an endpoint with pending deliveries parks them for replay.
        from kassa.events.service.delivery import dispatch

        await dispatch(db)
        client.v1.webhook_endpoints.update(parked.id, {"disabled": True})

        worker = _start_worker(database_url, tmp_path / "w.log", **env)
        await _until(lambda: set(ids) <= set(good.ids()), 30, "deliveries")

        def scraped() -> str:
            return httpx.get(api.url + "/metrics").text

        await _until(
            lambda: _metric(scraped(), "kassa_webhook_dead_letters", 'status="dead"') >= 3,
            30,
            "the dead-letter gauge",
        )
        text = scraped()
        assert _metric(text, "kassa_outbox_depth", 'consumer="webhooks"') >= 0
        assert _metric(text, "kassa_webhook_deliveries_pending") >= 3  # the failing endpoint's
        assert _metric(text, "kassa_webhook_delivery_duration_seconds_count") >= 6
        assert _metric(text, "kassa_webhook_event_lag_seconds_count") >= 3
        assert _metric(text, "kassa_webhook_delivery_attempts_total", 'outcome="failed"') >= 3
        assert _metric(text, "kassa_webhook_delivery_attempts_total", 'outcome="succeeded"') >= 3
        reason = 'reason="endpoint_disabled"'
        assert _metric(text, "kassa_webhook_dead_lettered_total", reason) >= 3
        del failing
    finally:
        if worker is not None:
            _stop(worker)
        stop_api(api)


def _succeeded_in(metrics_dir) -> float:
    """Successful delivery attempts counted by the worker processes writing to ``metrics_dir``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    value = registry.get_sample_value(
        "kassa_webhook_delivery_attempts_total", {"outcome": "succeeded"}
    )
    return value or 0.0


PER_WORKER = 4


async def test_two_workers_deliver_side_by_side_and_lose_no_event(
    db, api_url, merchant, receivers, database_url, tmp_path
):
    key, mid = merchant.key("secret"), merchant.merchant["id"]
    # A slow receiver: 600 events at 8 requests at a time (the endpoint's limit) take over
    # seven seconds; one worker process keeps only PER_WORKER (4) requests in flight, so the
    # endpoint's other slots are there for the other process.
    receiver = Receiver(delay=0.1).start()
    receivers.append(receiver)
    we = stripe_client(api_url, key).v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["*"]}
    )
    receiver.secrets = [we.secret]
    ids = await emit(db, mid, n=600)
    dirs = [tmp_path / "prom1", tmp_path / "prom2"]
    workers = []
    try:
        for n, metrics_dir in enumerate(dirs, 1):
            metrics_dir.mkdir()
            workers.append(
                _start_worker(
                    database_url,
                    tmp_path / f"w{n}.log",
                    PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
                    KASSA_WEBHOOK_WORKER_CONCURRENCY=str(PER_WORKER),
                )
            )
        # Sample each process's success counter: of the quarter seconds in which deliveries
        # happened, in how many did both processes deliver?
        active, both, last = 0, 0, (0.0, 0.0)
        deadline = time.monotonic() + 90
        while not set(ids) <= set(receiver.ids()):
            assert time.monotonic() < deadline, "events not delivered"
            await asyncio.sleep(0.25)
            now = (_succeeded_in(dirs[0]), _succeeded_in(dirs[1]))
            active += now[0] > last[0] or now[1] > last[1]
            both += now[0] > last[0] and now[1] > last[1]
            last = now
        deadline = time.monotonic() + 30
        while await _unfinished(db, we.id):
            assert time.monotonic() < deadline, "deliveries not recorded"
            await asyncio.sleep(0.2)
    finally:
        for proc in workers:
            _stop(proc)
    # Both processes delivered (each counts its own successes in its own metrics directory),
    # side by side most of the time, not just while one tick's loop hands over to another
    # process's (half a second per five-second tick with a single lane).
    first, second = (_succeeded_in(d) for d in dirs)
    assert first + second >= len(ids)
    assert both >= 0.6 * active, (both, active, first, second)
    # Every event arrived, once: the processes never claimed the same delivery (nothing died,
    # so no lease ran out), and the endpoint's concurrency limit held across them.
    assert receiver.counts() == dict.fromkeys(ids, 1)
    assert receiver.rejected == []
    assert PER_WORKER < receiver.max_concurrent <= get_settings().webhook_endpoint_concurrency
