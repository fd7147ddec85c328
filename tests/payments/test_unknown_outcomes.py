"""Unknown outcomes: with the acquirer applying operations and then timing out for 30 % of
calls, every payment ends ``succeeded`` or ``requires_payment_method`` once the status
inquiries run, and Kassa's records equal the acquirer's for every payment."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
import stripe

from kassa.connectors.configuration import Timeouts, sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.jobs import resolve_stale
from kassa.payments.service.context import Payments
from tests.conftest import start_api, stop_api
from tests.factories import new_merchant, stripe_client


@pytest.fixture
def impatient_connectors(sandbox, log_dir):
    """The sandbox's acquirers with a 1 s authorisation timeout, only ``acquirer_a`` routed."""
    config = sandbox_configuration(sandbox)
    acquirer_a = next(c for c in config.connectors if c.name == "acquirer_a")
    fast = acquirer_a.model_copy(update={"timeouts": Timeouts(authorize=1.0, status=2.0)})
    config = config.model_copy(
        update={
            "connectors": (fast,),
            "routing": config.routing.model_copy(update={"rules": (), "default": "acquirer_a"}),
        }
    )
    path = log_dir / "impatient-connectors.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path, config


@pytest.fixture
def faults(sandbox):
    url = sandbox["services"]["acquirer_a"]["base_url"]

    def apply(body: dict) -> None:
        httpx.post(f"{url}/admin/faults", json=body).raise_for_status()

    yield apply
    httpx.delete(f"{url}/admin/faults").raise_for_status()


async def test_apply_then_timeout_resolves_to_the_acquirers_truth(
    database_url, log_dir, db, sandbox, impatient_connectors, faults
):
    path, config = impatient_connectors
    server = start_api(
        database_url,
        log_dir,
        {"KASSA_CONNECTORS_FILE": str(path), "KASSA_RATE_LIMIT_PER_SECOND": "100000"},
    )
    merchant = await new_merchant(db)
    client = stripe_client(server.url, merchant.key("secret"))
    faults({"seed": 11, "path_prefix": "/v1/payments", "timeout_rate": 0.3, "hang_s": 3})
    intents = []
    try:
        for i in range(20):
            token = "pm_card_visa_chargeDeclined" if i % 5 == 4 else "pm_card_visa"
            try:
                pi = client.v1.payment_intents.create(
                    {
                        "amount": 1000 + i,
                        "currency": "usd",
                        "payment_method": token,
                        "confirm": True,
                    }
                )
                intents.append(pi.id)
            except stripe.CardError as exc:
                intents.append(exc.error.payment_intent.id)
    finally:
        stop_api(server)
    statuses = [await _status(db, merchant, i) for i in intents]
    assert "processing" in statuses  # some outcomes were lost in a timeout

    faults({})
    registry = ConnectorRegistry.from_configuration(config)
    try:
        await resolve_stale(Payments(db, registry), age=timedelta(0))
    finally:
        await registry.close()

    url = sandbox["services"]["acquirer_a"]["base_url"]
    for intent_id in intents:
        async with db.connection() as conn:
            intent = await conn.fetchrow(
                "SELECT status, amount, amount_received, latest_charge FROM payment_intents "
                "WHERE merchant_id = $1 AND id = $2",
                merchant.merchant["id"],
                intent_id,
            )
            charges = await conn.fetch(
                "SELECT id, status, amount_captured FROM charges WHERE merchant_id = $1 "
                "AND intent_id = $2",
                merchant.merchant["id"],
                intent_id,
            )
        assert intent["status"] in ("succeeded", "requires_payment_method"), intent
        for charge in charges:
            records = httpx.get(
                f"{url}/admin/transactions", params={"reference": charge["id"]}
            ).json()["data"]
            captured = sum(r["captured"] for r in records)
            assert len(records) <= 1
            assert charge["status"] != "pending"
            assert captured == charge["amount_captured"], (charge, records)
        if intent["status"] == "succeeded":
            assert intent["amount_received"] == intent["amount"]
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def _status(db, merchant, intent_id: str) -> str:
    async with db.connection() as conn:
        status: str = await conn.fetchval(
            "SELECT status FROM payment_intents WHERE merchant_id = $1 AND id = $2",
            merchant.merchant["id"],
            intent_id,
        )
    return status
