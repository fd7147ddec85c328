"""Background jobs of the events domain."""

from __future__ import annotations

import procrastinate

from kassa.core.db import Database
from kassa.events import service

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="23 3 * * *", periodic_id="daily")
@blueprint.task(name="prune_events", pass_context=True, queueing_lock="prune-events")
async def prune_events(context: procrastinate.JobContext, timestamp: int) -> int:
    """Apply the 30-day event retention."""
    db: Database = context.additional_context["db"]
    return await service.prune(db)
