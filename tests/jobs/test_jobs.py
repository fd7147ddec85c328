"""Jobs are rows written in the caller's transaction and run by `kassa worker`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from kassa import worker
from kassa.core import clock, jobs
from kassa.core.http import idempotency
from kassa.core.http.idempotency import IdempotencyKey
from tests.factories import new_merchant


async def _jobs_for(db, lock: str) -> list[str]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT status::text FROM procrastinate_jobs WHERE queueing_lock = $1", lock
        )
    return [r["status"] for r in rows]


async def test_a_job_exists_only_if_its_transaction_commits(db):
    lock = f"test-{uuid.uuid4()}"

    async def defer_then_fail() -> None:
        async with db.transaction() as conn:
            await jobs.defer(
                conn, "core:prune_idempotency_keys", {"timestamp": 0}, queueing_lock=lock
            )
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await defer_then_fail()
    assert await _jobs_for(db, lock) == []
    async with db.transaction() as conn:
        await jobs.defer(conn, "core:prune_idempotency_keys", {"timestamp": 0}, queueing_lock=lock)
    assert await _jobs_for(db, lock) == ["todo"]


async def test_the_worker_runs_due_jobs(db, database_url):
    merchant_id = (await new_merchant(db)).merchant["id"]
    key = IdempotencyKey(merchant_id, False, str(uuid.uuid4()), b"f", "req_x", timedelta(hours=24))
    clock.advance(-25 * 3600)  # the key was used yesterday
    try:
        async with db.transaction() as conn:
            await idempotency.claim(conn, key)
    finally:
        clock.reset()
    lock = f"run-{uuid.uuid4()}"
    async with db.transaction() as conn:
        await jobs.defer(conn, "core:prune_idempotency_keys", {"timestamp": 0}, queueing_lock=lock)
    await worker.run(database_url, concurrency=2, wait=False)
    assert await _jobs_for(db, lock) == ["succeeded"]
    async with db.connection() as conn:
        left = await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key.key)
    assert left == 0


async def test_a_second_job_under_one_queueing_lock_is_absorbed(db):
    lock = f"once-{uuid.uuid4()}"
    async with db.transaction() as conn:
        first = await jobs.defer(
            conn, "core:prune_idempotency_keys", {"timestamp": 0}, queueing_lock=lock
        )
        again = await jobs.defer(
            conn, "core:prune_idempotency_keys", {"timestamp": 0}, queueing_lock=lock
        )
        # The caller's transaction goes on after the absorbed duplicate.
        assert await conn.fetchval("SELECT 1") == 1
    assert first is not None
    assert again is None
    assert await _jobs_for(db, lock) == ["todo"]
