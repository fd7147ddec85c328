"""Cascading: when the first routed acquirer cannot be reached at all (the request never left),
the payment goes to the next candidate as a new attempt; nothing is charged twice."""

from __future__ import annotations

import json

import httpx

from kassa.connectors.configuration import sandbox_configuration
from kassa.core.embedded_pg import free_port
from tests.conftest import start_api, stop_api
from tests.factories import new_merchant, stripe_client


async def test_an_unreachable_acquirer_cascades_to_the_next(database_url, log_dir, db, sandbox):
    config = sandbox_configuration(sandbox)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    connectors = tuple(
        c.model_copy(update={"base_url": dead}) if c.name == "acquirer_a" else c
        for c in config.connectors
    )
    path = log_dir / "cascade-connectors.json"
    path.write_text(
        json.dumps(config.model_copy(update={"connectors": connectors}).model_dump(mode="json"))
    )
    server = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(path)})
    try:
        merchant = await new_merchant(db)
        client = stripe_client(server.url, merchant.key("secret"))
        # A card typed in just now: its CVC goes with the first authorisation, wherever that
        # ends up, so the next acquirer gets it too.
        pm = client.v1.payment_methods.create(
            {
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        )
        pi = client.v1.payment_intents.create(
            {"amount": 1200, "currency": "usd", "payment_method": pm.id, "confirm": True}
        )
        assert (pi.status, pi.amount_received) == ("succeeded", 1200)
        charges = client.v1.charges.list({"payment_intent": pi.id}).data
        by_connector = {c.routing.connector: c for c in charges}
        assert set(by_connector) == {"acquirer_a", "acquirer_b"}
        assert by_connector["acquirer_a"].status == "failed"
        assert by_connector["acquirer_a"].failure_code == "processing_error"
        assert by_connector["acquirer_b"].status == "succeeded"
        assert pi.latest_charge == by_connector["acquirer_b"].id
        assert "cascade" in by_connector["acquirer_b"].routing.reason
        records = httpx.get(
            f"{sandbox['services']['acquirer_b']['base_url']}/admin/transactions",
            params={"reference": by_connector["acquirer_b"].id},
        ).json()["data"]
        assert [r["card"]["cvc_check"] for r in records] == ["pass"]
    finally:
        stop_api(server)
