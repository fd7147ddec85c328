"""``kassa worker``: runs every domain's background jobs (procrastinate on PostgreSQL).

Several workers can run at once; each job is taken by exactly one of them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import procrastinate

from kassa.config import get_settings
from kassa.connectors.configuration import load_configuration
from kassa.connectors.policy import Resilience
from kassa.connectors.registry import ConnectorRegistry
from kassa.core import jobs
from kassa.core.db import Database
from kassa.core.http import idempotency
from kassa.events import jobs as events_jobs
from kassa.payments import jobs as payments_jobs
from kassa.payments.service.context import Payments

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
    "payments": payments_jobs.blueprint,
}


def create_app(dsn: str) -> procrastinate.App:
    return jobs.create_app(dsn, BLUEPRINTS)


async def run(dsn: str, *, concurrency: int = 4, wait: bool = True, **options: Any) -> None:
    """Work jobs until stopped (SIGINT/SIGTERM), or, with ``wait=False``, until none is left."""
    db = await Database.connect(dsn, 1, concurrency + 1)
    settings = get_settings()
    configuration = load_configuration(settings.connectors_file, settings.sandbox_manifest)
    connectors = ConnectorRegistry.from_configuration(configuration)
    app = create_app(dsn)
    try:
        async with app.open_async():
            await app.run_worker_async(
                concurrency=concurrency,
                wait=wait,
                # "wait": long-running tasks (the webhook loop) only drain when it is False.
                additional_context={
                    "db": db,
                    "wait": wait,
                    "payments": Payments(
                        db,
                        connectors,
                        settings.public_url or f"http://{settings.api_host}:{settings.api_port}",
                        resilience=Resilience.for_connectors(db, configuration.connectors),
                    ),
                },
                install_signal_handlers=wait,
                **options,
            )
    finally:
        await connectors.close()
        await db.close()
