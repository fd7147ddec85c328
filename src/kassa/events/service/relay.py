"""The relay: publishes every outbox event to NATS JetStream for other systems, which read
them with durable consumers.

Exactly once per durable consumer: the relay leases a batch of its outbox rows, publishes each
event with ``Nats-Msg-Id`` = the event id, and deletes the rows once JetStream has acknowledged
them. A relay that dies after publishing but before deleting leaves the rows to be published
again when their lease ends; JetStream drops the repeats because it has seen those message ids
within the stream's duplicate window (``relay_duplicate_window_seconds``, default 2 h), so a
relay must be back within that window. Order across events is not guaranteed."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import nats
import orjson
import structlog
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from kassa.config import Settings, get_settings
from kassa.core import clock
from kassa.core.db import Database, Record
from kassa.events import metrics, repository
from kassa.events.schemas import event_object
from kassa.events.service import outbox

log = structlog.get_logger(__name__)

DEFAULT_CONSUMER = "nats"
BATCH = 256
_IDLE = 0.1


def subject(row: Record, prefix: str) -> str:
    """``kassa.events.<test|live>.<merchant>.<type>``, e.g. ``….charge.succeeded``, so
    consumers can filter by mode, merchant or type with NATS wildcards."""
    mode = "live" if row["livemode"] else "test"
    return f"{prefix}.{mode}.{row['merchant_id']}.{row['type']}"


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the stream, or bring an existing one to the configured subjects and window."""
    config = StreamConfig(
        name=settings.relay_stream,
        subjects=[f"{settings.relay_subject_prefix}.>"],
        storage=StorageType.FILE,
        duplicate_window=settings.relay_duplicate_window_seconds,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def take(db: Database, consumer: str, limit: int = BATCH) -> list[Record]:
    """Lease up to ``limit`` of the consumer's queued events."""
    now = clock.now()
    lease_until = now + timedelta(seconds=get_settings().relay_lease_seconds)
    async with db.transaction(single_statement=True) as conn:
        return await repository.take_for_relay(conn, consumer, now, lease_until, limit)


async def publish(js: JetStreamContext, rows: list[Record], settings: Settings) -> int:
    """Publish leased events and wait for JetStream's acknowledgements; returns how many
    JetStream reported as duplicates (already stored)."""
    acks = await asyncio.gather(
        *(
            js.publish(
                subject(row, settings.relay_subject_prefix),
                orjson.dumps(event_object(row)),
                headers={"Nats-Msg-Id": row["id"]},
            )
            for row in rows
        )
    )
    duplicates = sum(1 for a in acks if a.duplicate)
    metrics.RELAYED.labels("duplicate").inc(duplicates)
    metrics.RELAYED.labels("published").inc(len(acks) - duplicates)
    return duplicates


async def acknowledge(db: Database, consumer: str, rows: list[Record]) -> None:
    """Forget published events: the relay's durable mark in PostgreSQL."""
    async with db.transaction(single_statement=True) as conn:
        await repository.ack_relayed(conn, consumer, [r["seq"] for r in rows])


async def relay_once(
    db: Database,
    js: JetStreamContext,
    consumer: str,
    settings: Settings | None = None,
    batch: int = BATCH,
) -> int:
    """One batch: lease, publish, acknowledge. Returns the events relayed."""
    settings = settings or get_settings()
    rows = await take(db, consumer, batch)
    if rows:
        await publish(js, rows, settings)
        await acknowledge(db, consumer, rows)
    return len(rows)


async def run(
    db: Database,
    nats_url: str,
    *,
    consumer: str = DEFAULT_CONSUMER,
    backfill: bool = False,
    stop: asyncio.Event | None = None,
    batch: int = BATCH,
) -> None:
    """Relay until ``stop`` is set. The consumer is registered first, so every event committed
    from then on is relayed (``backfill``: also every retained event, on first registration)."""
    settings = get_settings()
    stop = stop or asyncio.Event()
    await outbox.register_consumer(db, consumer, backfill=backfill)
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
    try:
        js = nc.jetstream()
        await ensure_stream(js, settings)
        log.info("relay_started", consumer=consumer, stream=settings.relay_stream)
        while not stop.is_set():
            try:
                n = await relay_once(db, js, consumer, settings, batch)
            except Exception:
                # NATS or PostgreSQL unavailable: the leased rows come back when their lease
                # ends, and the repeats are dropped by JetStream.
                log.exception("relay_batch_failed", consumer=consumer)
                n = 0
                await asyncio.sleep(1.0)
            if n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _IDLE)
    finally:
        await nc.close()
