"""A refund whose answer is lost (the acquirer applies it, then times out) stays pending with
its amount reserved; the resend job finishes it exactly once."""

from __future__ import annotations

import json

import httpx
import pytest
import stripe

from kassa.connectors.configuration import Timeouts, sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.service import refunds
from kassa.payments.service.context import Payments
from tests.conftest import start_api, stop_api
from tests.factories import new_merchant, stripe_client


async def test_a_lost_refund_answer_is_resolved_by_resending(database_url, log_dir, db, sandbox):
    config = sandbox_configuration(sandbox)
    beltrane = next(c for c in config.connectors if c.name == "acquirer_b")
    fast = beltrane.model_copy(update={"timeouts": Timeouts(modify=1.0)})
    config = config.model_copy(
        update={
            "connectors": (fast,),
            "routing": config.routing.model_copy(update={"rules": (), "default": "acquirer_b"}),
        }
    )
    path = log_dir / "refund-unknown-connectors.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    server = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(path)})
    faults = f"{sandbox['services']['acquirer_b']['base_url']}/admin/faults"
    merchant = await new_merchant(db)
    client = stripe_client(server.url, merchant.key("secret"))
    try:
        pi = client.v1.payment_intents.create(
            {"amount": 4000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
        )
        httpx.post(faults, json={"script": ["timeout"], "hang_s": 3}).raise_for_status()
        charge_id = str(pi.latest_charge)
        refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
        assert refund.status == "pending"
        charge = client.v1.charges.retrieve(charge_id)
        assert charge.amount_refunded == 0
        # The reserved part cannot be refunded a second time meanwhile.
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create({"payment_intent": pi.id, "amount": 3001})
        assert err.value.code == "amount_too_large"
    finally:
        httpx.delete(faults).raise_for_status()
        stop_api(server)
    registry = ConnectorRegistry.from_configuration(config)
    try:
        payments = Payments(db, registry)
        mid = merchant.merchant["id"]
        assert await refunds.resend_refund(payments, mid, False, refund.id) == "succeeded"
        assert await refunds.resend_refund(payments, mid, False, refund.id) == "succeeded"
    finally:
        await registry.close()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT amount_refunded, amount_refunding FROM charges WHERE merchant_id = $1 "
            "AND id = $2",
            merchant.merchant["id"],
            pi.latest_charge,
        )
    assert (row["amount_refunded"], row["amount_refunding"]) == (1000, 0)
    records = httpx.get(
        f"{sandbox['services']['acquirer_b']['base_url']}/admin/transactions",
        params={"reference": charge_id},
    ).json()["data"]
    assert len(records) == 1
    assert (await ledger.verify(db, merchant.merchant["id"])).ok
