"""Duplicated and reordered PSP notifications: Arvona confirms refunds only by notification;
with every other notification sent twice and deliveries shuffled, each refund is applied once,
the charges' refunded amounts and the merchant's balance are right, and the inbox holds each
PSP event once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from kassa.connectors.configuration import ConnectorsFile
from kassa.connectors.registry import ConnectorRegistry
from kassa.core.db import Database
from kassa.payments.service import psp_events
from kassa.payments.service.context import Payments
from tests.conftest import LiveServer

PAYMENTS = 6
REFUNDS = (700, 300, 1000)  # three partial refunds of each 3,000 payment: 2,000 in all


async def _stored(db: Database, refund_ids: list[str]) -> int:
    async with db.connection() as conn:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM psp_inbox WHERE connector = 'acquirer_a' "
            "AND event->>'operation_reference' = ANY($1::text[])",
            refund_ids,
        )
    return n


async def test_duplicated_and_reordered_notifications_change_nothing_twice(
    db: Database,
    client: Any,
    sandbox: dict[str, Any],
    chaos_server: LiveServer,
    chaos_configuration: ConnectorsFile,
    faults: Any,
) -> None:
    url = sandbox["services"]["acquirer_a"]["base_url"]
    hook = f"{chaos_server.url}/psp/acquirer_a/webhooks"
    httpx.put(f"{url}/admin/webhook-url", json={"url": hook}).raise_for_status()
    try:
        faults(
            "acquirer_a",
            {"seed": 5, "webhook_duplicate_rate": 0.5, "webhook_reorder_window_s": 1.0},
        )
        before = {b.currency: b.amount for b in client.v1.balance.retrieve().pending}
        refunds: list[str] = []
        charges: list[str] = []
        for _ in range(PAYMENTS):
            pi = client.v1.payment_intents.create(
                {
                    "amount": 3000,
                    "currency": "eur",
                    "payment_method": "pm_card_visa",
                    "confirm": True,
                }
            )
            assert client.v1.charges.retrieve(pi.latest_charge).routing.connector == "acquirer_a"
            charges.append(pi.latest_charge)
            for amount in REFUNDS:
                refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": amount})
                assert refund.status == "pending"  # Arvona decides later, by notification
                refunds.append(refund.id)
        httpx.post(f"{url}/admin/clock/advance", json={"seconds": 2}).raise_for_status()
        deadline = time.monotonic() + 30
        while await _stored(db, refunds) < len(refunds):
            assert time.monotonic() < deadline, "the refund notifications did not all arrive"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # let the duplicates and the shuffled stragglers land too

        registry = ConnectorRegistry.from_configuration(chaos_configuration)
        try:
            payments = Payments(db, registry)
            assert await psp_events.process_inbox(payments) >= len(refunds)
            assert await psp_events.process_inbox(payments) == 0  # nothing happens twice
        finally:
            await registry.close()
    finally:
        httpx.put(f"{url}/admin/webhook-url", json={"url": None}).raise_for_status()

    deliveries = httpx.get(f"{url}/admin/webhook-deliveries").json()["data"]
    mine = [d for d in deliveries if d["url"] == hook]
    # The sandbox did send duplicates (and a delivery's first attempt is the original).
    assert any(a["duplicate"] for d in mine for a in d["attempts"])
    assert await _stored(db, refunds) == len(refunds)  # …and the inbox kept each event once
    assert {client.v1.refunds.retrieve(r).status for r in refunds} == {"succeeded"}
    for charge in charges:
        assert client.v1.charges.retrieve(charge).amount_refunded == sum(REFUNDS)
    after = {b.currency: b.amount for b in client.v1.balance.retrieve().pending}
    fee = 3000 * 29 // 1000 + 30  # the default card fee plan, kept on refunds
    # 3,000 captured (less the fee) and 2,000 refunded per payment.
    assert after["eur"] - before.get("eur", 0) == PAYMENTS * (3000 - fee - sum(REFUNDS))
