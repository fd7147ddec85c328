"""Webhook delivery: the dispatcher turns outbox rows into deliveries (one per subscribed
enabled endpoint); workers lease due deliveries, POST them signed, and record the outcome.

At-least-once: a delivery is leased, not locked, while its request is in flight (no row lock is
held across the network); if the worker dies the lease runs out and another worker sends it
again. Retries follow exponential backoff with full jitter inside a 3-day window, then the
delivery is a dead letter. A delivery whose processing keeps failing inside Kassa (a poison
pill) is parked after a few tries instead of blocking anything. Every time here comes from
``core.clock``, so tests can move through the retry window."""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import structlog

from kassa.config import Settings, get_settings
from kassa.core import clock
from kassa.core.db import Database, Record
from kassa.core.ids import new_id
from kassa.events import metrics, repository
from kassa.events.service import endpoints, signing, transport

log = structlog.get_logger(__name__)

DISPATCH_BATCH = 500
_STATS_EVERY = 5.0
_IDLE_MIN, _IDLE_MAX = 0.02, 0.25


@dataclass(slots=True)
class Outcome:
    """What became of one claimed delivery; ``row`` is what ``record_outcomes`` writes."""

    kind: str  # succeeded | failed | crashed | parked | canceled
    row: dict[str, Any]
    endpoint_id: str
    merchant_id: str
    http: bool = False
    latency_s: float | None = None
    lag_s: float | None = None
    dead_reason: str | None = None


def backoff(settings: Settings, failures: int) -> float:
    """Seconds before the next try after ``failures`` failures in a row: exponential with full
    jitter (uniform between 0 and the capped exponential), so a recovering receiver is not hit
    by every retry at once."""
    ceiling = min(
        settings.webhook_backoff_cap_seconds,
        settings.webhook_backoff_base_seconds * 2 ** min(failures, 30),
    )
    return random.uniform(0, ceiling)


async def dispatch(db: Database, *, limit: int = DISPATCH_BATCH) -> int:
    """Move up to ``limit`` events from the outbox to deliveries, in one transaction: the
    queue rows are deleted in the same commit that creates the deliveries, so an event is
    dispatched exactly once even if this process dies halfway. Returns the events taken."""
    async with db.transaction() as conn:
        await repository.relax_durability(conn)
        rows = await repository.take_for_dispatch(conn, limit)
        if not rows:
            return 0
        now = clock.now()
        deliveries = [
            {
                "merchant_id": r["merchant_id"],
                "id": new_id("whd"),
                "endpoint_id": r["endpoint_id"],
                "event_id": r["event_id"],
                "livemode": r["livemode"],
                "event_type": r["type"],
                "created_at": now,
            }
            for r in rows
            if r["endpoint_id"] is not None
        ]
        if deliveries:
            await repository.insert_deliveries(conn, deliveries)
    return len({(r["merchant_id"], r["event_id"]) for r in rows})


async def claim(db: Database, limit: int, settings: Settings | None = None) -> list[Record]:
    """Lease up to ``limit`` due deliveries within each endpoint's concurrency limit."""
    settings = settings or get_settings()
    if limit <= 0:
        return []
    now = clock.now()
    async with db.transaction() as conn:
        await repository.begin_claim(conn)
        return await repository.claim_due(
            conn,
            now=now,
            lease_until=now + timedelta(seconds=settings.webhook_lease_seconds),
            per_endpoint=settings.webhook_endpoint_concurrency,
            limit=limit,
        )


def _payload(row: Record) -> bytes:
    return orjson.dumps(
        {
            "id": row["event_id"],
            "object": "event",
            "api_version": row["api_version"],
            "created": int(row["event_created_at"].timestamp()),
            "data": row["data"],
            "livemode": row["livemode"],
            "pending_webhooks": row["pending_webhooks"],
            "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
            "type": row["type"],
        }
    )


def _base(row: Record, now: datetime) -> dict[str, Any]:
    return {
        "merchant_id": row["merchant_id"],
        "id": row["id"],
        "attempt_id": new_id("whatt"),
        "endpoint_id": row["endpoint_id"],
        "event_id": row["event_id"],
        "livemode": row["livemode"],
        "lease_until": row["lease_until"],
        "attempt": row["attempt_count"],
        "at": now,
        "logged": False,
        "succeeded": False,
        "status_code": None,
        "latency_ms": None,
        "response_body": None,
        "error": None,
        "status": "pending",
        "dead_reason": None,
        "next_attempt_at": now,
        "round_attempts": row["round_attempts"],
        "crashes": row["crashes"],
    }


def _outcome(kind: str, row: Record, sql: dict[str, Any], **extra: Any) -> Outcome:
    return Outcome(kind, sql, row["endpoint_id"], row["merchant_id"], **extra)


@dataclass
class Deliverer:
    """Sends claimed deliveries; one per worker loop (it keeps the HTTP connection pool and
    the resolved addresses)."""

    client: httpx.AsyncClient
    settings: Settings = field(default_factory=get_settings)
    resolver: transport.Resolver = field(default_factory=transport.Resolver)
    # Unsealed secrets by (endpoint, sealed bytes): a rotation changes the bytes, so a stale
    # entry is never used; it saves two AES operations per delivery.
    _secrets: dict[tuple[str, bytes], list[signing.Secret]] = field(default_factory=dict)

    def _unseal(self, row: Record) -> list[signing.Secret]:
        key = (row["endpoint_id"], bytes(row["secrets"]))
        secrets = self._secrets.get(key)
        if secrets is None:
            secrets = signing.unseal(row["endpoint_id"], bytes(row["secrets_key"]), key[1])
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            self._secrets[key] = secrets
        return secrets

    async def attempt(self, row: Record) -> Outcome:
        """Try one claimed delivery; never raises (a fault in Kassa becomes a ``crashed`` or
        ``parked`` outcome)."""
        now = clock.now()
        sql = _base(row, now)
        try:
            if row["crashes"] >= self.settings.webhook_max_crashes:
                # Claimed this many times without a recorded result: its processing kills or
                # breaks the worker. Set it aside so it cannot take the queue down with it.
                sql.update(
                    status="parked",
                    dead_reason="processing_error",
                    error=f"processing did not finish in {row['crashes']} tries",
                    crashes=row["crashes"],
                )
                return _outcome("parked", row, sql, dead_reason="processing_error")
            if not row["event_exists"] or row["endpoint_deleted"]:
                sql.update(status="canceled", error="event or endpoint no longer exists")
                return _outcome("canceled", row, sql)
            if row["endpoint_status"] != "enabled":
                # Disabled between the claim and now: keep it for a replay once re-enabled.
                sql.update(status="dead", dead_reason="endpoint_disabled")
                return _outcome("canceled", row, sql, dead_reason="endpoint_disabled")
            return await self._send(row, sql, now)
        except Exception as exc:
            return self._crashed(row, sql, now, exc)

    async def _send(self, row: Record, sql: dict[str, Any], now: datetime) -> Outcome:
        secrets = signing.live(self._unseal(row), clock.timestamp())
        body = _payload(row)
        header = signing.signature_header(secrets, clock.timestamp(), body)
        result = await transport.post(
            self.client,
            self.resolver,
            row["url"],
            body,
            {"Stripe-Signature": header},
            livemode=row["livemode"],
            allow_private=self.settings.webhooks_allow_private,
            time_limit=self.settings.webhook_timeout_seconds,
        )
        done = clock.now()
        sql.update(
            attempt=row["attempt_count"] + 1,
            at=done,
            logged=True,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_body=result.body,
            error=result.error,
            crashes=0,
        )
        latency = result.latency_ms / 1000
        if result.succeeded:
            sql.update(status="succeeded", next_attempt_at=done)
            lag = (done - row["event_created_at"]).total_seconds()
            return _outcome("succeeded", row, sql, http=True, latency_s=latency, lag_s=lag)
        failures = row["round_attempts"] + 1
        deadline = row["retry_from"] + timedelta(hours=self.settings.webhook_retry_hours)
        sql["round_attempts"] = failures
        if done >= deadline:
            sql.update(status="dead", dead_reason="retries_exhausted")
            return _outcome(
                "failed", row, sql, http=True, latency_s=latency, dead_reason="retries_exhausted"
            )
        retry_at = done + timedelta(seconds=backoff(self.settings, failures))
        sql["next_attempt_at"] = min(retry_at, deadline)
        return _outcome("failed", row, sql, http=True, latency_s=latency)

    def _crashed(self, row: Record, sql: dict[str, Any], now: datetime, exc: Exception) -> Outcome:
        crashes = row["crashes"] + 1
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        error = f"kassa: {type(exc).__name__}: {exc}"[:400]
        if where is not None:
            error += f" ({where.filename.rpartition('/')[2]}:{where.lineno})"
        log.error("webhook_delivery_crashed", delivery=row["id"], error=error)
        sql.update(
            attempt=row["attempt_count"] + 1,
            logged=True,
            error=error,
            crashes=crashes,
            status="pending",
            next_attempt_at=now + timedelta(seconds=backoff(self.settings, crashes)),
        )
        if crashes >= self.settings.webhook_max_crashes:
            sql.update(status="parked", dead_reason="processing_error")
            return _outcome("parked", row, sql, dead_reason="processing_error")
        return _outcome("crashed", row, sql)


async def record(db: Database, outcomes: list[Outcome], settings: Settings | None = None) -> None:
    """Write outcomes and endpoint health in one transaction, then disable endpoints that have
    been failing longer than allowed. A deadlock with a concurrent replay or disable is retried;
    if recording still fails the leases run out and the deliveries are simply sent again."""
    if not outcomes:
        return
    settings = settings or get_settings()
    rows = [o.row | {"http": o.http} for o in outcomes]
    threshold = clock.now() - timedelta(days=settings.webhook_disable_after_days)
    for attempt in range(3):
        try:
            async with db.transaction() as conn:
                await repository.relax_durability(conn)
                failing = await repository.record_outcomes(conn, rows, threshold)
            break
        except asyncpg.DeadlockDetectedError:
            if attempt == 2:
                raise
    for o in outcomes:
        if o.kind != "canceled":
            metrics.ATTEMPTS.labels(o.kind if o.kind != "parked" else "crashed").inc()
        if o.latency_s is not None:
            metrics.DELIVERY_LATENCY.observe(o.latency_s)
        if o.lag_s is not None:
            metrics.EVENT_LAG.observe(o.lag_s)
        if o.dead_reason is not None:
            metrics.DEAD_LETTERED.labels(o.dead_reason).inc()
    for ep in failing:
        await endpoints.disable_failing(db, ep["merchant_id"], ep["id"])


async def deliver_due(db: Database, *, limit: int = 100) -> int:
    """Dispatch everything queued, then send up to ``limit`` due deliveries and record the
    outcomes; returns how many were claimed. The worker runs a continuous loop (``Pump``);
    tests call this after moving the clock."""
    while await dispatch(db):
        pass
    settings = get_settings()
    async with _client(settings, limit) as client:
        deliverer = Deliverer(client, settings)
        rows = await claim(db, limit, settings)
        outcomes = await asyncio.gather(*(deliverer.attempt(r) for r in rows))
        await record(db, list(outcomes), settings)
    return len(rows)


def _client(settings: Settings, connections: int) -> httpx.AsyncClient:
    # trust_env=False: no proxy from the environment, the request must go to the address that
    # was checked.
    return httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=max(connections, 1), max_keepalive_connections=max(connections, 1)
        ),
    )


async def refresh_gauges(db: Database) -> None:
    """Read queue depths and dead-letter counts into the gauges."""
    async with db.connection() as conn:
        depths = await repository.outbox_depths(conn)
        counts = await repository.delivery_counts(conn)
    for consumer, n in depths.items():
        metrics.OUTBOX_DEPTH.labels(consumer).set(n)
    metrics.DELIVERIES_PENDING.set(counts["pending"])
    metrics.DEAD_LETTERS.labels("dead").set(counts["dead"])
    metrics.DEAD_LETTERS.labels("parked").set(counts["parked"])


class Pump:
    """The worker's delivery loop: keeps up to ``webhook_worker_concurrency`` requests in
    flight, claiming more as slots free up, so a slow endpoint never holds up the others.

    Three coroutines share the work so their database round trips overlap: the dispatcher turns
    outbox rows into deliveries, the feeder claims due deliveries and starts their requests,
    the recorder writes finished ones in batches. The dispatcher and the recorder wake the
    feeder (new deliveries; recorded ones free their endpoint's slots)."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or get_settings()
        self.capacity = self.settings.webhook_worker_concurrency
        self._in_flight: set[asyncio.Task[None]] = set()
        self._done: list[Outcome] = []
        self._finished = asyncio.Event()  # a request finished: something to record
        self._work = asyncio.Event()  # deliveries dispatched or recorded: claim again
        self._stopping = False
        self._recording = False
        self._dispatched_all = False
        self._deadline = 0.0
        self._looping = False

    def extend(self, seconds: float) -> bool:
        """Keep the loop running until at least ``seconds`` from now; False (nothing changes)
        if it is not running or already winding down, so the caller starts a new one."""
        if not self._looping:
            return False
        self._deadline = max(self._deadline, time.monotonic() + seconds)
        return True

    async def run(self, seconds: float, *, drain: bool = False) -> int:
        """Deliver for ``seconds`` (real time: this paces the loop, it schedules nothing), or
        with ``drain`` until nothing is due; returns the deliveries attempted."""
        self._deadline = time.monotonic() + seconds
        next_stats = 0.0
        idle = _IDLE_MIN
        attempted = 0
        async with _client(self.settings, self.capacity) as client:
            deliverer = Deliverer(client, self.settings)
            helpers = [
                asyncio.create_task(self._record_loop()),
                asyncio.create_task(self._dispatch_loop()),
            ]
            self._looping = True
            try:
                # ``extend`` may move the deadline while the loop runs (no await between this
                # test and ``_looping = False`` below, so an extension is never missed).
                while time.monotonic() < self._deadline:
                    self._work.clear()
                    free = self.capacity - len(self._in_flight)
                    rows = await claim(self.db, free, self.settings) if free > 0 else []
                    for row in rows:
                        self._start(deliverer, row)
                    attempted += len(rows)
                    if time.monotonic() >= next_stats:
                        await refresh_gauges(self.db)
                        next_stats = time.monotonic() + _STATS_EVERY
                    if rows:
                        idle = _IDLE_MIN
                        continue
                    if drain and self._dispatched_all and not self._busy():
                        break
                    try:
                        async with asyncio.timeout(idle):
                            await self._work.wait()
                        idle = _IDLE_MIN
                    except TimeoutError:
                        idle = min(idle * 2, _IDLE_MAX)
            finally:
                self._looping = False
                if self._in_flight:
                    await asyncio.wait(self._in_flight)
                self._stopping = True
                self._finished.set()
                await asyncio.gather(*helpers)
        return attempted

    def _busy(self) -> bool:
        return bool(self._in_flight or self._done or self._recording or self._finished.is_set())

    def _start(self, deliverer: Deliverer, row: Record) -> None:
        async def go() -> None:
            outcome = await deliverer.attempt(row)
            # Only now look up the list: the recorder swaps it while requests are in flight.
            self._done.append(outcome)
            self._finished.set()

        task = asyncio.create_task(go())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _dispatch_loop(self) -> None:
        # A full batch means more is waiting: go again at once; otherwise pause briefly so an
        # idle outbox costs a few queries a second, not a busy loop.
        pause = _IDLE_MIN
        while not self._stopping:
            try:
                n = await dispatch(self.db)
            except Exception:
                log.exception("webhook_dispatch_failed")
                n = 0
            if n:
                self._work.set()
            self._dispatched_all = n < DISPATCH_BATCH
            if n >= DISPATCH_BATCH:
                continue
            pause = _IDLE_MIN if n else min(pause * 2, _IDLE_MAX)
            await asyncio.sleep(pause)

    async def _record_loop(self) -> None:
        while True:
            await self._finished.wait()
            self._finished.clear()
            if self._done:
                batch, self._done = self._done, []
                self._recording = True
                try:
                    await record(self.db, batch, self.settings)
                except Exception:
                    # The leases run out and these deliveries are sent again: at-least-once.
                    log.exception("webhook_record_failed", deliveries=len(batch))
                finally:
                    self._recording = False
                self._work.set()
            if self._stopping and not self._done:
                return
