"""Background jobs of the events domain: event retention and the webhook delivery loop."""

from __future__ import annotations

import time

import procrastinate

from kassa.core.db import Database
from kassa.events import service
from kassa.events.service import delivery

blueprint = procrastinate.Blueprint()

# A delivery loop is deferred every TICK seconds (6-field cron: seconds last) and runs about as
# long, so a loop is always running somewhere in the fleet; a worker that dies is replaced
# within a tick, and its leased deliveries come due again when their leases end. LANES loops
# can run side by side (each lane's queueing lock keeps at most one of its ticks waiting) so
# several worker processes share the delivery work, claims keeping per-endpoint limits across
# them; two lanes in one process only contend (measured), so the default is one.
TICK_SECONDS = 5
LANES = 1
_OVERLAP_SECONDS = 0.5


@blueprint.periodic(cron="23 3 * * *", periodic_id="daily")
@blueprint.task(name="prune_events", pass_context=True, queueing_lock="prune-events")
async def prune_events(context: procrastinate.JobContext, timestamp: int) -> int:
    """Apply the 30-day event retention."""
    db: Database = context.additional_context["db"]
    return await service.prune(db)


@blueprint.task(name="deliver_webhooks", pass_context=True)
async def deliver_webhooks(context: procrastinate.JobContext, timestamp: int) -> int:
    """Dispatch outbox events and deliver due webhooks for about one tick.

    A tick picked up long after it was due (a worker started with old jobs waiting, or
    ``kassa worker`` draining with ``wait=False``) only drains what is due and returns, so old
    ticks do not pile up into minutes of looping."""
    db: Database = context.additional_context["db"]
    # procrastinate's ``timestamp`` is wall-clock time; this only paces the loop.
    late = time.time() - timestamp > 2 * TICK_SECONDS
    pump = delivery.Pump(db)
    if late or not context.additional_context.get("wait", True):
        return await pump.run(TICK_SECONDS, drain=True)
    return await pump.run(TICK_SECONDS + _OVERLAP_SECONDS)


for _lane in range(LANES):
    blueprint.periodic(
        cron=f"* * * * * */{TICK_SECONDS}",
        periodic_id=f"lane-{_lane}",
        queueing_lock=f"deliver-webhooks-{_lane}",
    )(deliver_webhooks)
