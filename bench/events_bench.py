"""Benchmark: webhook deliveries per second and outbox lag.

Starts a tiny HTTP receiver (raw asyncio, its own process) and a ``kassa worker`` process, then
emits events through ``events.service.emit`` — each in its own transaction, as a state change
writes it — at a steady ``RATE_PER_S`` (250/s, below what one worker sustains on the 2-core
reference machine, so the lag is a steady-state figure) for ``duration_s``. Figures:

- ``webhook_deliveries_per_s``: events the receiver got per second during that window;
- ``outbox_lag_p50`` / ``outbox_lag_p99``: time from the emitting transaction's commit to the
  receiver having the event (wall clock, same machine);
- ``webhook_drain_per_s``: deliveries per second while the worker empties a backlog (what one
  worker can do when it is the bottleneck);
- ``webhook_deliveries_under_payments_per_s`` / ``outbox_lag_under_payments_p50`` / ``_p99``:
  the same under the payments benchmark's load instead of synthetic emits — an API and the
  sandbox run, ``bench.payments_bench``'s create+confirm card payments are driven for
  ``duration_s``, and a webhook endpoint of the paying merchant (``["*"]``) points at the
  receiver. Lag runs from the event's ``created`` time (taken inside the payment's
  transaction, so it slightly overstates commit → received) to arrival. The first figure also
  says how many events per second the payments emitted, how many of them were still
  undelivered when the load stopped (``behind_at_load_end``), how long the worker took after
  the load to deliver the rest (``drain_after_load_s``) and whether it kept up.

The receiver does not verify signatures (the tests do); it answers 200 at once.

Run as ``python -m bench.events_bench [duration_s]``; prints one JSON line per figure.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

RATE_PER_S = 250.0
EMITTERS = 4
BACKLOG = 3000
WARMUP_S = 1.0
WORKERS = 1  # ``kassa worker`` processes (the figures are one worker's)
# The payments benchmark's request and API size (bench.payments_bench, bench --workers).
PAYMENT_BODY = b"amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true"
API_WORKERS = 2


# --- the receiver (a separate process) -------------------------------------------------------


def _receive(port: int, out: str, ready: Any) -> None:
    """Answer every POST with 200 and log ``event id <TAB> arrival time``; exit on SIGTERM."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a Kassa dependency
        pass
    seen: list[tuple[bytes, float]] = []

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport  # uvloop's transports are not asyncio.Transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while True:
                head_end = self.buf.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = self.buf[: head_end + 2].lower()
                at = head.find(b"content-length:")
                length = int(head[at + 15 : head.find(b"\r\n", at)].strip()) if at >= 0 else 0
                end = head_end + 4 + length
                if len(self.buf) < end:
                    return
                body = self.buf[head_end + 4 : end]
                self.buf = self.buf[end:]
                start = body.find(b'"id":"') + 6
                seen.append((body[start : body.find(b'"', start)], time.time()))
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        server = await loop.create_server(Http, "127.0.0.1", port)
        ready.set()
        await stop.wait()
        server.close()

    asyncio.run(main())
    Path(out).write_text("".join(f"{i.decode()}\t{t}\n" for i, t in seen))


# --- the driver ------------------------------------------------------------------------------


async def _setup(dsn: str, url: str) -> tuple[Any, str]:
    from kassa.core.db import Database
    from kassa.core.http.context import ApiKeyIdentity, Caller
    from kassa.events.schemas import EndpointCreate
    from kassa.events.service import endpoints
    from kassa.merchants import service as merchants

    db = await Database.connect(dsn, 2, EMITTERS + 2)
    merchant = await merchants.create_merchant(db, name="Events bench")
    merchant_id = merchant.merchant["id"]
    caller = Caller(
        ApiKeyIdentity("bench", merchant_id, False, "secret"), "req_bench", {}, None, "/"
    )
    params = EndpointCreate.model_validate({"url": url, "enabled_events": ["*"]})
    await endpoints.create_endpoint(db, caller, params)
    return db, merchant_id


async def _emit_steady(
    db: Any, merchant_id: str, rate: float, seconds: float, committed: dict[str, float]
) -> None:
    from kassa.events import service as events

    start = time.monotonic()
    total = int(rate * seconds)
    counter = iter(range(total))

    async def emitter() -> None:
        for k in counter:
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with db.transaction() as conn:
                event_id = await events.emit(
                    conn,
                    merchant_id=merchant_id,
                    livemode=False,
                    type="charge.succeeded",
                    obj={"id": f"ch_{k}", "object": "charge", "amount": 1000 + k},
                )
            committed[event_id] = time.time()

    await asyncio.gather(*(emitter() for _ in range(EMITTERS)))


async def _emit_backlog(db: Any, merchant_id: str, n: int) -> list[str]:
    from kassa.events import service as events

    ids = []
    for start in range(0, n, 100):
        async with db.transaction() as conn:
            for k in range(start, min(start + 100, n)):
                ids.append(
                    await events.emit(
                        conn,
                        merchant_id=merchant_id,
                        livemode=False,
                        type="charge.succeeded",
                        obj={"id": f"ch_b{k}", "object": "charge", "amount": k},
                    )
                )
    return ids


def _read(out: Path) -> dict[str, float]:
    got: dict[str, float] = {}
    for line in out.read_text().splitlines():
        event_id, _, at = line.partition("\t")
        got.setdefault(event_id, float(at))
    return got


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(dsn: str, duration_s: float = 10.0) -> list[dict[str, object]]:
    """Measure webhook delivery throughput and outbox lag against ``dsn`` (migrated)."""
    from kassa.core.crypto import generate_key
    from kassa.core.embedded_pg import free_port

    os.environ.setdefault("KASSA_KEK", generate_key())
    os.environ.setdefault("KASSA_INDEX_KEY", generate_key())
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="kassa-events-bench-") as tmp:
        steady_out, backlog_out = Path(tmp) / "steady.tsv", Path(tmp) / "backlog.tsv"
        payments_out = Path(tmp) / "payments.tsv"
        figures: list[dict[str, object]] = []
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "kassa", "worker"],
                env={**os.environ, "KASSA_DATABASE_URL": dsn, "KASSA_LOG_LEVEL": "warning"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(WORKERS)
        ]
        try:
            for phase, out in (
                ("steady", steady_out),
                ("backlog", backlog_out),
                ("payments", payments_out),
            ):
                ready = ctx.Event()
                receiver = ctx.Process(target=_receive, args=(port, str(out), ready))
                receiver.start()
                ready.wait(30)
                try:
                    if phase == "payments":
                        figures += _under_payments(dsn, port, duration_s, out, receiver)
                    else:
                        figures += asyncio.run(_phase(phase, dsn, port, duration_s, out, receiver))
                finally:
                    if receiver.is_alive():
                        receiver.terminate()
                    receiver.join(30)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    return figures


async def _phase(
    phase: str, dsn: str, port: int, duration_s: float, out: Path, receiver: Any
) -> list[dict[str, object]]:
    db, merchant_id = await _setup(dsn, f"http://127.0.0.1:{port}/hooks")
    try:
        if phase == "steady":
            # Warm up until the worker's delivery loop is running and delivering.
            warm: dict[str, float] = {}
            await _emit_steady(db, merchant_id, 20, WARMUP_S, warm)
            await asyncio.sleep(6)
            committed: dict[str, float] = {}
            t0 = time.time()
            await _emit_steady(db, merchant_id, RATE_PER_S, duration_s, committed)
            t1 = time.time()
            await _wait_drained(db, merchant_id, 60)
            receiver.terminate()
            receiver.join(30)
            got = _read(out)
            in_window = sum(1 for i in committed if i in got and got[i] <= t1)
            lags = [(got[i] - c) * 1000 for i, c in committed.items() if i in got]
            lost = len(committed) - len(lags)
            return [
                {
                    "name": "webhook_deliveries_per_s",
                    "value": round(in_window / (t1 - t0), 1),
                    "unit": "req/s",
                    "emitted_per_s": round(len(committed) / (t1 - t0), 1),
                    "undelivered": lost,
                },
                {"name": "outbox_lag_p50", "value": round(_percentile(lags, 0.5), 1), "unit": "ms"},
                {
                    "name": "outbox_lag_p99",
                    "value": round(_percentile(lags, 0.99), 1),
                    "unit": "ms",
                    "emitted_per_s": round(len(committed) / (t1 - t0), 1),
                },
            ]
        ids = await _emit_backlog(db, merchant_id, BACKLOG)
        await _wait_drained(db, merchant_id, 120)
        receiver.terminate()
        receiver.join(30)
        got = _read(out)
        times = sorted(got[i] for i in ids if i in got)
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        return [
            {
                "name": "webhook_drain_per_s",
                "value": round(len(times) / span, 1),
                "unit": "req/s",
                "backlog": BACKLOG,
            }
        ]
    finally:
        await db.close()


def _under_payments(
    dsn: str, port: int, duration_s: float, out: Path, receiver: Any
) -> list[dict[str, object]]:
    """Deliveries and lag while ``bench.payments_bench``'s load runs through a live API."""
    from bench import loadgen, payments_bench
    from bench.harness import merchant_key, running_api, running_sandbox

    key = merchant_key(dsn, "Events bench payments")
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    body = PAYMENT_BODY

    def pay(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
        return "POST", "/v1/payment_intents", headers, body

    with (
        running_sandbox() as manifest,
        running_api(dsn, API_WORKERS, KASSA_SANDBOX_MANIFEST=str(manifest)) as (
            url,
            _pid,
        ),
    ):
        created = httpx.post(
            url + "/v1/webhook_endpoints",
            headers=headers,
            data={"url": f"http://127.0.0.1:{port}/hooks", "enabled_events[]": "*"},
            timeout=30,
        )
        created.raise_for_status()
        endpoint_id = created.json()["id"]
        loadgen.run(url, pay, payments_bench.CONCURRENCY, 2.0)  # warm-up, as payments_bench
        t0 = time.time()
        result = loadgen.run(url, pay, payments_bench.CONCURRENCY, duration_s, processes=1)
        t1 = time.time()
    committed, drained_at = asyncio.run(_payments_events(dsn, endpoint_id, t0, t1))
    receiver.terminate()
    receiver.join(30)
    got = _read(out)
    in_window = sum(1 for at in got.values() if t0 <= at <= t1)
    behind = sum(1 for i in committed if got.get(i, t1 + 1) > t1)
    lags = [(got[i] - c) * 1000 for i, c in committed.items() if i in got]
    emitted_per_s = round(len(committed) / (t1 - t0), 1)
    delivered_per_s = round(in_window / (t1 - t0), 1)
    drain_s = round(max(0.0, drained_at - t1), 1) if drained_at else None
    return [
        {
            "name": "webhook_deliveries_under_payments_per_s",
            "value": delivered_per_s,
            "unit": "req/s",
            "payments_per_s": round(result.rate, 1),
            "payment_errors": result.errors,
            "events_emitted_per_s": emitted_per_s,
            "events": len(committed),
            "undelivered": len(committed) - len(lags),
            "behind_at_load_end": behind,
            "drain_after_load_s": drain_s,
            "kept_up": drain_s is not None and drain_s < 1.0,
            "workers": WORKERS,
        },
        {
            "name": "outbox_lag_under_payments_p50",
            "value": round(_percentile(lags, 0.5), 1),
            "unit": "ms",
        },
        {
            "name": "outbox_lag_under_payments_p99",
            "value": round(_percentile(lags, 0.99), 1),
            "unit": "ms",
            "events_emitted_per_s": emitted_per_s,
        },
    ]


async def _payments_events(
    dsn: str, endpoint_id: str, t0: float, t1: float
) -> tuple[dict[str, float], float | None]:
    """The events the measured load created (``created`` within ``[t0, t1]``) with their
    creation times, after waiting until the worker has delivered everything; and when that
    was (None if it had not after two minutes)."""
    from kassa.core.db import Database

    db = await Database.connect(dsn, 1, 2)
    try:
        async with db.connection() as conn:
            merchant_id = await conn.fetchval(
                "SELECT merchant_id FROM webhook_endpoints WHERE id = $1", endpoint_id
            )
        drained = await _wait_drained(db, merchant_id, 120)
        drained_at = time.time()
        async with db.connection() as conn:
            rows = await conn.fetch(
                "SELECT id, extract(epoch FROM created_at)::float8 AS at FROM events "
                "WHERE merchant_id = $1 AND created_at >= to_timestamp($2) "
                "AND created_at <= to_timestamp($3)",
                merchant_id,
                t0,
                t1,
            )
    finally:
        await db.close()
    return {r["id"]: r["at"] for r in rows}, (drained_at if drained else None)


async def _wait_drained(db: Any, merchant_id: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with db.connection() as conn:
            left = await conn.fetchval(
                """
                SELECT (SELECT count(*) FROM webhook_deliveries
                        WHERE merchant_id = $1 AND status = 'pending')
                     + (SELECT count(*) FROM event_outbox WHERE merchant_id = $1)
                """,
                merchant_id,
            )
        if not left:
            return True
        await asyncio.sleep(0.05)
    return False


if __name__ == "__main__":
    from kassa.core import migrate
    from kassa.core.embedded_pg import Cluster

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        cluster = Cluster.at(Path(tmp) / "pgdata")
        cluster.init(durable=True)
        cluster.start()
        try:
            cluster.create_database("kassa")
            migrate.upgrade(cluster.dsn())
            for figure in run(cluster.dsn(), seconds):
                print(json.dumps(figure), flush=True)
        finally:
            cluster.stop()
