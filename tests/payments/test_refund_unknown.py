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
from kassa.payments.service import refund_outcomes, refunds
from kassa.payments.service.context import Origin, Payments
from tests.conftest import start_api, stop_api
from tests.factories import new_merchant, stripe_client


@pytest.mark.parametrize("settled_by", ["resend", "notification", "refusal", "busy_psp"])
async def test_a_lost_refund_answer_is_settled_once(database_url, log_dir, db, sandbox, settled_by):
    """Whichever learns the outcome first — the resend job or the PSP's notification (here
    the function the inbox calls) — books the refund; the other changes nothing."""
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
    mid = merchant.merchant["id"]
    if settled_by in ("notification", "refusal"):
        origin = Origin(mid, False, "psp_webhook")
        async with db.transaction() as conn:
            said = await refund_outcomes.refund_outcome(
                conn, origin, refund.id, settled_by == "notification", "declined"
            )
        assert said.startswith(
            "refund succeeded" if settled_by == "notification" else "refund failed"
        )
    registry = ConnectorRegistry.from_configuration(config)
    expected = "failed" if settled_by == "refusal" else "succeeded"
    try:
        payments = Payments(db, registry)
        if settled_by == "busy_psp":
            # A 429 to the resend says nothing about the first request: still pending, and
            # asked again later.
            httpx.post(faults, json={"error_rates": {"429": 1.0}}).raise_for_status()
            try:
                assert await refunds.resend_refund(payments, mid, False, refund.id) == "pending"
            finally:
                httpx.delete(faults).raise_for_status()
            async with db.connection() as conn:
                status = await conn.fetchval(
                    "SELECT status FROM refunds WHERE merchant_id = $1 AND id = $2", mid, refund.id
                )
            assert status == "pending"
        assert await refunds.resend_refund(payments, mid, False, refund.id) == expected
        assert await refunds.resend_refund(payments, mid, False, refund.id) == expected
    finally:
        await registry.close()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT amount_refunded, amount_refunding FROM charges WHERE merchant_id = $1 "
            "AND id = $2",
            merchant.merchant["id"],
            pi.latest_charge,
        )
    refunded = 0 if settled_by == "refusal" else 1000
    assert (row["amount_refunded"], row["amount_refunding"]) == (refunded, 0)
    async with db.connection() as conn:
        booked = await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE merchant_id = $1 AND id LIKE $2",
            mid,
            f"{refund.id}:%",
        )
    assert (booked > 0) == (settled_by != "refusal")
    records = httpx.get(
        f"{sandbox['services']['acquirer_b']['base_url']}/admin/transactions",
        params={"reference": charge_id},
    ).json()["data"]
    assert len(records) == 1
    assert (await ledger.verify(db, merchant.merchant["id"])).ok
