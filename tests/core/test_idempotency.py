"""Idempotency-Key storage semantics, against the real database."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from kassa.core import clock
from kassa.core.errors import IdempotencyKeyInUse, IdempotencyMismatch
from kassa.core.http import idempotency
from kassa.core.http.idempotency import IdempotencyKey, Replay
from tests.factories import new_merchant


def _key(merchant_id: str, key: str, params: dict[str, str]) -> IdempotencyKey:
    return IdempotencyKey(
        merchant_id=merchant_id,
        livemode=False,
        key=key,
        fingerprint=idempotency.fingerprint("POST", "/v1/things", params),
        request_id="req_test",
        ttl=timedelta(hours=24),
    )


async def test_replay_mismatch_in_flight_and_expiry(db):
    merchant_id = (await new_merchant(db)).merchant["id"]
    key = str(uuid.uuid4())
    first = _key(merchant_id, key, {"a": "1"})

    async with db.transaction() as conn:
        await idempotency.claim(conn, first)
    # Claimed and committed without a response: a two-step effect is still running.
    async with db.transaction() as conn:
        with pytest.raises(IdempotencyKeyInUse):
            await idempotency.claim(conn, first)
    async with db.transaction() as conn:
        await idempotency.store_response(conn, first, 200, {"id": "thing_1"})
    async with db.transaction() as conn:
        with pytest.raises(Replay) as replay:
            await idempotency.claim(conn, first)
    assert (replay.value.status, replay.value.body) == (200, {"id": "thing_1"})
    async with db.transaction() as conn:
        with pytest.raises(IdempotencyMismatch):
            await idempotency.claim(conn, _key(merchant_id, key, {"a": "2"}))

    clock.advance(25 * 3600)
    try:
        # Past retention the key is free again, even for different parameters.
        async with db.transaction() as conn:
            await idempotency.claim(conn, _key(merchant_id, key, {"a": "2"}))
    finally:
        clock.reset()


async def test_rolled_back_claims_leave_nothing(db):
    merchant_id = (await new_merchant(db)).merchant["id"]
    key = _key(merchant_id, str(uuid.uuid4()), {})

    async def failing_effect() -> None:
        async with db.transaction() as conn:
            await idempotency.claim(conn, key)
            raise RuntimeError("the effect failed")

    with pytest.raises(RuntimeError):
        await failing_effect()
    async with db.transaction() as conn:
        await idempotency.claim(conn, key)  # free again: nothing was stored


async def test_prune_removes_only_expired_keys(db):
    merchant_id = (await new_merchant(db)).merchant["id"]
    key = _key(merchant_id, str(uuid.uuid4()), {})
    async with db.transaction() as conn:
        await idempotency.claim(conn, key)
    async with db.transaction() as conn:
        await idempotency.prune(conn, timedelta(hours=24))
        assert (
            await conn.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key.key)
            == 1
        )
    clock.advance(25 * 3600)
    try:
        async with db.transaction() as conn:
            assert await idempotency.prune(conn, timedelta(hours=24)) >= 1
    finally:
        clock.reset()


async def test_a_job_finishes_only_the_claim_of_the_request_it_recovers(db):
    """A job storing (or releasing) the key of a request whose process died: a claim made
    after that request began is another request's, and a response already stored stays."""
    merchant_id = (await new_merchant(db)).merchant["id"]
    key = str(uuid.uuid4())
    dead = idempotency.of_request(merchant_id, False, key)
    began = clock.now()
    clock.advance(25 * 3600)
    try:
        # The key expired and was claimed again by a newer request, still running.
        newer = _key(merchant_id, key, {"a": "2"})
        async with db.transaction() as conn:
            await idempotency.claim(conn, newer)
            await idempotency.store_response(conn, dead, 200, {"id": "old"}, claimed_by=began)
            await idempotency.release(conn, dead, claimed_by=began)
        async with db.transaction() as conn:
            with pytest.raises(IdempotencyKeyInUse):
                await idempotency.claim(conn, newer)
            await idempotency.store_response(conn, newer, 200, {"id": "new"})
        # Completed: a late job leaves the stored response alone.
        async with db.transaction() as conn:
            await idempotency.store_response(conn, dead, 200, {"id": "old"}, claimed_by=clock.now())
        async with db.transaction() as conn:
            with pytest.raises(Replay) as replay:
                await idempotency.claim(conn, newer)
        assert replay.value.body == {"id": "new"}
    finally:
        clock.reset()
