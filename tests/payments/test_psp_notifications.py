"""PSP notifications through ``/psp/{connector}/webhooks``: verified, stored once, applied
through the state machine. Arvona confirms refunds asynchronously; a refused refund is
reversed in the ledger."""

from __future__ import annotations

import asyncio
import time

import httpx
import orjson
import pytest

from kassa.connectors.configuration import sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.service import psp_events
from kassa.payments.service.context import Payments
from kassa.sandbox.acquirer_a.notifications import item_signature


@pytest.fixture
def arvona(sandbox, api_url):
    url = sandbox["services"]["acquirer_a"]["base_url"]
    hook = f"{api_url}/psp/acquirer_a/webhooks"
    httpx.put(f"{url}/admin/webhook-url", json={"url": hook}).raise_for_status()
    yield url, hook
    httpx.delete(f"{url}/admin/faults").raise_for_status()
    httpx.put(f"{url}/admin/webhook-url", json={"url": None}).raise_for_status()


@pytest.fixture
async def payments(db, sandbox):
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    yield Payments(db, registry)
    await registry.close()


async def _inbox(db, event_id_like: str) -> list:
    async with db.connection() as conn:
        return await conn.fetch(
            "SELECT event_id, kind, processed_at, outcome FROM psp_inbox "
            "WHERE connector = 'acquirer_a' AND event->>'operation_reference' = $1",
            event_id_like,
        )


async def _until(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_refunds_are_confirmed_by_notification_once(client, db, arvona, payments):
    url, _hook = arvona
    # Every notification twice: the inbox keeps one.
    httpx.post(f"{url}/admin/faults", json={"webhook_duplicate_rate": 1.0}).raise_for_status()
    pi = client.v1.payment_intents.create(
        {"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert client.v1.charges.retrieve(pi.latest_charge).routing.connector == "acquirer_a"
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1500})
    assert refund.status == "pending"  # Arvona answers "received"; the outcome comes later
    httpx.post(f"{url}/admin/clock/advance", json={"seconds": 1}).raise_for_status()

    async def stored() -> bool:
        return len(await _inbox(db, refund.id)) == 1

    await _until(stored, "the refund notification")
    assert await psp_events.process_inbox(payments) >= 1
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    [row] = await _inbox(db, refund.id)
    assert row["outcome"] == "refund succeeded"
    assert await psp_events.process_inbox(payments) == 0  # nothing happens twice
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 1500


async def test_a_refused_refund_is_reversed(client, db, arvona, payments, sandbox, merchant):
    url, hook = arvona
    # Hold Arvona's own notifications back so only the one below speaks for this refund.
    httpx.post(f"{url}/admin/faults", json={"webhook_drop_rate": 1.0}).raise_for_status()
    pi = client.v1.payment_intents.create(
        {"amount": 8000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True}
    )
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 3000})
    before = client.v1.balance.retrieve().pending
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT r.psp_reference AS refund_psp, c.psp_reference AS payment_psp, c.id "
            "FROM refunds r JOIN charges c ON c.merchant_id = r.merchant_id AND c.id = r.charge_id "
            "WHERE r.id = $1",
            refund.id,
        )
    item = {
        "eventCode": "REFUND",
        "success": "false",
        "eventDate": "2026-11-22T12:00:00Z",
        "merchantAccountCode": sandbox["services"]["acquirer_a"]["credentials"]["merchant_account"],
        "pspReference": row["refund_psp"],
        "originalReference": row["payment_psp"],
        "merchantReference": row["id"],
        "amount": {"value": 3000, "currency": "EUR"},
        "reason": "Insufficient balance on the merchant account",
        "paymentMethod": "visa",
    }
    secret = sandbox["services"]["acquirer_a"]["webhook_secret"]
    item["additionalData"] = {
        "modificationReference": refund.id,
        "hmacSignature": item_signature(item, secret),
    }
    body = orjson.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
    tampered = {**item, "amount": {"value": 1, "currency": "EUR"}}
    forged = orjson.dumps(
        {"live": "false", "notificationItems": [{"NotificationRequestItem": tampered}]}
    )
    rejected = httpx.post(hook, content=forged, headers={"content-type": "application/json"})
    assert rejected.status_code == 401
    answer = httpx.post(hook, content=body, headers={"content-type": "application/json"})
    assert (answer.status_code, answer.text) == (200, "[accepted]")
    again = httpx.post(hook, content=body, headers={"content-type": "application/json"})
    assert again.status_code == 200
    assert len(await _inbox(db, refund.id)) == 1

    await psp_events.process_inbox(payments)
    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", item["reason"])
    assert client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 0
    after = client.v1.balance.retrieve().pending
    eur = {b.currency: b.amount for b in after}["eur"]
    assert eur == {b.currency: b.amount for b in before}["eur"] + 3000
    kinds = [t.type for t in client.v1.balance_transactions.list({"source": refund.id}).data]
    assert sorted(kinds) == ["refund", "refund_failure"]
    assert (await ledger.verify(db, merchant.merchant["id"])).ok
