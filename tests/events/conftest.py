"""Fixtures for the events tests: a merchant with the SDK pointed at the live API, real webhook
receivers, and cleanup so one test's deliveries never reach another test's receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from kassa.core import clock
from kassa.events import service as events
from kassa.merchants.service import NewMerchant
from tests.events.receiver import Receiver
from tests.factories import new_merchant

_NOT_LOCAL = r"^https?://(?!(127\.0\.0\.1|localhost)[:/])"


async def _quiet_remote_endpoints(db) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE webhook_endpoints SET status = 'disabled' WHERE url ~ $1", _NOT_LOCAL
        )
        await conn.execute(
            "UPDATE webhook_deliveries d SET status = 'canceled', lease_until = NULL "
            "FROM webhook_endpoints w WHERE w.merchant_id = d.merchant_id "
            "AND w.id = d.endpoint_id AND d.status = 'pending' AND w.url ~ $1",
            _NOT_LOCAL,
        )


@pytest.fixture(scope="package", autouse=True)
async def _no_traffic_beyond_this_machine(db) -> AsyncIterator[None]:
    """These tests run the delivery loop over the whole (shared) test database: endpoints
    other tests made with public URLs (example.com, fuzzed ones) must never be called."""
    await _quiet_remote_endpoints(db)
    yield
    await _quiet_remote_endpoints(db)


@pytest.fixture(autouse=True)
def _real_time() -> Iterator[None]:
    yield
    clock.reset()


@pytest.fixture
async def merchant(db) -> AsyncIterator[NewMerchant]:
    m = await new_merchant(db)
    yield m
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE webhook_deliveries SET status = 'canceled', lease_until = NULL "
            "WHERE merchant_id = $1 AND status = 'pending'",
            m.merchant["id"],
        )


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


async def emit(db, merchant_id: str, type_: str = "charge.succeeded", n: int = 1, **kw) -> list:
    """``n`` events, each in its own transaction as a state change would write it."""
    ids = []
    for i in range(n):
        async with db.transaction() as conn:
            ids.append(
                await events.emit(
                    conn,
                    merchant_id=merchant_id,
                    livemode=kw.get("livemode", False),
                    type=type_,
                    obj={"id": f"ch_{i}", "object": "charge", "amount": 100 + i},
                )
            )
    return ids


async def deliver_all(db, rounds: int = 20) -> int:
    """Run due deliveries until none is left due now."""
    from kassa.events.service.delivery import deliver_due

    total = 0
    for _ in range(rounds):
        n = await deliver_due(db, limit=200)
        total += n
        if n == 0:
            break
    return total
