"""Background jobs on PostgreSQL, run by procrastinate workers (``kassa worker``).

Jobs are deferred with ``defer(conn, …)`` on the caller's own connection, inside the
transaction of the state change that needs them: a job exists if and only if its cause
committed (enqueueing after commit could lose it on a crash; enqueueing before could run it
for a change that rolled back). Domains declare tasks on a ``procrastinate.Blueprint`` in their
``jobs.py``; ``kassa.worker`` gathers them into one App."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import asyncpg
import procrastinate

from kassa.core.db import Connection

DEFAULT_QUEUE = "default"


def create_app(dsn: str, blueprints: Mapping[str, procrastinate.Blueprint]) -> procrastinate.App:
    """A procrastinate App on ``dsn`` with every domain's tasks, namespaced by domain."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    for namespace, blueprint in blueprints.items():
        app.add_tasks_from(blueprint, namespace=namespace)
    return app


async def defer(
    conn: Connection,
    task_name: str,
    args: dict[str, Any],
    *,
    queue: str = DEFAULT_QUEUE,
    scheduled_at: datetime | None = None,
    queueing_lock: str | None = None,
    lock: str | None = None,
    priority: int = 0,
) -> int | None:
    """Enqueue ``task_name`` (``namespace:task``) in ``conn``'s transaction; returns the job id,
    or None when ``queueing_lock`` already has a job waiting (that job will do the work).

    ``queueing_lock`` keeps at most one such job waiting; ``lock`` serialises running ones."""
    query = """
        SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[
            ROW($1, $2, $3, $4, $5, $6::jsonb, $7)::procrastinate_job_to_defer_v1
        ]))
        """
    values = (queue, task_name, priority, lock, queueing_lock, args, scheduled_at)
    if queueing_lock is None:
        job_id: int = await conn.fetchval(query, *values)
        return job_id
    try:
        # A savepoint: the duplicate lock must not abort the caller's transaction.
        async with conn.transaction():
            queued: int = await conn.fetchval(query, *values)
            return queued
    except asyncpg.UniqueViolationError:
        return None
