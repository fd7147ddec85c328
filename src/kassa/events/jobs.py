"""Background jobs of the events domain: event retention and the webhook delivery loop."""

from __future__ import annotations

import time

import procrastinate

from kassa.core.db import Database
from kassa.events import service
from kassa.events.service import delivery

blueprint = procrastinate.Blueprint()

# A delivery loop tick is deferred every TICK seconds (6-field cron: seconds last) in each of
# LANES lanes (each lane's queueing lock keeps at most one of its ticks waiting). A worker
# process runs at most one delivery loop (``Pump``): a tick reaching a process whose loop is
# running extends that loop by a tick and returns; otherwise it starts one that lasts about a
# tick. So every worker process that took a tick of any lane in the last tick delivers — up to
# LANES processes side by side, each claiming different deliveries (SKIP LOCKED, with the
# per-endpoint limit held across processes by the claim lock) — while two loops never contend
# inside one process. A loop is always running somewhere in the fleet; a worker that dies is
# replaced within a tick, and its leased deliveries come due again when their leases end.
# With fewer workers than lanes the extra ticks only extend loops (a job each, no delivery
# work); with eight lanes a process misses every tick of a round (and pauses until the next)
# about once in 2⁸ rounds when two workers share them.
TICK_SECONDS = 5
LANES = 8
_OVERLAP_SECONDS = 0.5

# This process's running delivery loop, if any, and whether a late tick is draining.
_pump: delivery.Pump | None = None
_draining = False


@blueprint.periodic(cron="23 3 * * *", periodic_id="daily")
@blueprint.task(name="prune_events", pass_context=True, queueing_lock="prune-events")
async def prune_events(context: procrastinate.JobContext, timestamp: int) -> int:
    """Apply the 30-day event retention."""
    db: Database = context.additional_context["db"]
    return await service.prune(db)


@blueprint.task(name="deliver_webhooks", pass_context=True)
async def deliver_webhooks(context: procrastinate.JobContext, timestamp: int) -> int:
    """Dispatch outbox events and deliver due webhooks for about one tick, or extend this
    process's running delivery loop by a tick.

    A tick picked up long after it was due (a worker started with old jobs waiting, or
    ``kassa worker`` draining with ``wait=False``) only drains what is due and returns, so old
    ticks do not pile up into minutes of looping."""
    global _pump, _draining
    db: Database = context.additional_context["db"]
    if _pump is not None and _pump.extend(TICK_SECONDS + _OVERLAP_SECONDS):
        return 0
    # procrastinate's ``timestamp`` is wall-clock time; this only paces the loop.
    late = time.time() - timestamp > 2 * TICK_SECONDS
    if late or not context.additional_context.get("wait", True):
        if _draining:  # another tick is draining in this process already
            return 0
        _draining = True
        try:
            return await delivery.Pump(db).run(TICK_SECONDS, drain=True)
        finally:
            _draining = False
    pump = _pump = delivery.Pump(db)
    try:
        return await pump.run(TICK_SECONDS + _OVERLAP_SECONDS)
    finally:
        if _pump is pump:
            _pump = None


for _lane in range(LANES):
    blueprint.periodic(
        cron=f"* * * * * */{TICK_SECONDS}",
        periodic_id=f"lane-{_lane}",
        queueing_lock=f"deliver-webhooks-{_lane}",
    )(deliver_webhooks)
