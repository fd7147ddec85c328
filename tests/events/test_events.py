"""The outbox and /v1/events, through the stripe SDK."""

from __future__ import annotations

import pytest
import stripe

from kassa.core import clock
from kassa.events import service as events
from tests.factories import new_merchant, stripe_client


async def _emit(db, merchant_id: str, type_: str, obj_id: str, livemode: bool = False) -> str:
    async with db.transaction() as conn:
        return await events.emit(
            conn,
            merchant_id=merchant_id,
            livemode=livemode,
            type=type_,
            obj={"id": obj_id, "object": type_.split(".")[0], "amount": 100},
            previous_attributes={"amount": 50} if type_.endswith("updated") else None,
            request_id="req_abc",
            idempotency_key="key-1",
        )


async def test_events_are_listed_filtered_and_retrieved(db, api_url):
    m = await new_merchant(db)
    mid = m.merchant["id"]
    ids = [
        await _emit(db, mid, "charge.succeeded", "ch_1"),
        await _emit(db, mid, "charge.refunded", "ch_1"),
        await _emit(db, mid, "payment_intent.succeeded", "pi_1"),
        await _emit(db, mid, "customer.updated", "cus_1"),
    ]
    client = stripe_client(api_url, m.key("secret"))
    listed = client.v1.events.list()
    assert [e.id for e in listed.data] == list(reversed(ids))
    assert [e.id for e in client.v1.events.list({"type": "charge.*"}).data] == [ids[1], ids[0]]
    assert [e.id for e in client.v1.events.list({"type": "customer.updated"}).data] == [ids[3]]
    both = client.v1.events.list({"types": ["charge.refunded", "payment_intent.succeeded"]})
    assert [e.id for e in both.data] == [ids[2], ids[1]]

    evt = client.v1.events.retrieve(ids[3])
    assert evt.type == "customer.updated"
    assert evt.data.object.id == "cus_1"
    assert evt.data.previous_attributes.amount == 50
    assert (evt.request.id, evt.request.idempotency_key) == ("req_abc", "key-1")
    assert evt.api_version
    assert evt.livemode is False

    other = stripe_client(api_url, (await new_merchant(db)).key("secret"))
    with pytest.raises(stripe.InvalidRequestError):
        other.v1.events.retrieve(ids[0])
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.events.list({"type": "DROP TABLE"})
    assert err.value.param == "type"


async def test_an_event_exists_only_if_its_change_committed(db):
    m = await new_merchant(db)

    async def change_then_fail() -> None:
        async with db.transaction() as conn:
            await events.emit(
                conn,
                merchant_id=m.merchant["id"],
                livemode=False,
                type="charge.succeeded",
                obj={"id": "ch_x"},
            )
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await change_then_fail()
    async with db.connection() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE merchant_id = $1", m.merchant["id"]
            )
            == 0
        )


async def test_events_are_kept_thirty_days(db):
    m = await new_merchant(db)
    clock.advance(-31 * 86400)
    try:
        old = await _emit(db, m.merchant["id"], "charge.succeeded", "ch_old")
    finally:
        clock.reset()
    recent = await _emit(db, m.merchant["id"], "charge.succeeded", "ch_new")
    assert await events.prune(db) >= 1
    async with db.connection() as conn:
        left = await conn.fetch("SELECT id FROM events WHERE merchant_id = $1", m.merchant["id"])
    assert [r["id"] for r in left] == [recent]
    assert old != recent
