"""``kassa worker``: runs every domain's background jobs (procrastinate on PostgreSQL).

Several workers can run at once; each job is taken by exactly one of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import procrastinate

from kassa.config import get_settings
from kassa.core import jobs
from kassa.core.db import Database
from kassa.core.http import idempotency
from kassa.events import jobs as events_jobs

maintenance = procrastinate.Blueprint()


@maintenance.periodic(cron="17 * * * *", periodic_id="hourly")
@maintenance.task(name="prune_idempotency_keys", pass_context=True, queueing_lock="prune-idem")
async def prune_idempotency_keys(context: procrastinate.JobContext, timestamp: int) -> int:
    """Drop idempotency keys past their retention (24 h by default)."""
    db: Database = context.additional_context["db"]
    ttl = timedelta(hours=get_settings().idempotency_ttl_hours)
    async with db.transaction() as conn:
        return await idempotency.prune(conn, ttl)


BLUEPRINTS: dict[str, procrastinate.Blueprint] = {
    "core": maintenance,
    "events": events_jobs.blueprint,
}


def create_app(dsn: str) -> procrastinate.App:
    return jobs.create_app(dsn, BLUEPRINTS)


async def run(dsn: str, *, concurrency: int = 4, wait: bool = True, **options: Any) -> None:
    """Work jobs until stopped (SIGINT/SIGTERM), or, with ``wait=False``, until none is left."""
    db = await Database.connect(dsn, 1, concurrency + 1)
    app = create_app(dsn)
    try:
        async with app.open_async():
            await app.run_worker_async(
                concurrency=concurrency,
                wait=wait,
                additional_context={"db": db},
                install_signal_handlers=wait,
                **options,
            )
    finally:
        await db.close()
