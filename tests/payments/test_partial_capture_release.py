"""A final partial capture releases the rest of the authorisation, also at Arvona, which keeps
it authorised: Kassa voids the remainder once the capture is applied, and books nothing for it."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from kassa.connectors.configuration import sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.service import expiry
from kassa.payments.service.context import Payments
from tests.conftest import start_api, stop_api
from tests.factories import new_merchant, stripe_client


@pytest.fixture
def arvona_only(sandbox, log_dir):
    """The sandbox's connectors with every payment routed to ``acquirer_a``."""
    config = sandbox_configuration(sandbox)
    config = config.model_copy(
        update={
            "connectors": tuple(c for c in config.connectors if c.name == "acquirer_a"),
            "routing": config.routing.model_copy(update={"rules": (), "default": "acquirer_a"}),
        }
    )
    path = log_dir / "arvona-only.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path, config


def _arvona_record(sandbox, charge_id: str) -> dict:
    url = sandbox["services"]["acquirer_a"]["base_url"]
    records = httpx.get(f"{url}/admin/transactions", params={"reference": charge_id}).json()
    assert len(records["data"]) == 1
    return records["data"][0]


def _voided(record: dict) -> bool:
    cancels = [m for m in record["modifications"] if m["kind"] == "cancel"]
    return any(m["status"] == "succeeded" for m in cancels)


async def test_remainder_of_a_partial_capture_is_voided_at_arvona(
    database_url, log_dir, db, sandbox, arvona_only
):
    path, config = arvona_only
    server = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(path)})
    merchant = await new_merchant(db)
    try:
        client = stripe_client(server.url, merchant.key("secret"))
        pi = client.v1.payment_intents.create(
            {
                "amount": 5000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "capture_method": "manual",
                "confirm": True,
            }
        )
        pi = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 3000})
    finally:
        stop_api(server)
    assert pi.status == "succeeded"
    assert pi.amount_received == 3000
    charge_id = pi.latest_charge
    assert isinstance(charge_id, str)
    async with db.connection() as conn:
        queued = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
            "'payments:release_remainder' AND args->>'charge_id' = $1",
            charge_id,
        )
    assert queued == 1  # committed with the capture

    registry = ConnectorRegistry.from_configuration(config)
    payments = Payments(db, registry)
    try:
        outcome = "waiting"
        for _ in range(100):  # the sandbox applies the capture after a short delay
            outcome = await expiry.release_remainder(
                payments, merchant.merchant["id"], False, charge_id
            )
            if outcome != "waiting":
                break
            await asyncio.sleep(0.1)
        assert outcome == "requested"
        for _ in range(100):
            record = _arvona_record(sandbox, charge_id)
            if _voided(record):
                break
            await asyncio.sleep(0.1)
        assert record["captured"] == 3000
        assert record["closed"] is True
        assert record["capturable"] == 0  # the 2000 left are released, not held
        # Asking again is harmless: the same reference, and nothing left to release.
        again = await expiry.release_remainder(payments, merchant.merchant["id"], False, charge_id)
        assert again in ("requested", "closed already")
        record = _arvona_record(sandbox, charge_id)
        assert sum(m["kind"] == "cancel" for m in record["modifications"]) == 1
    finally:
        await registry.close()

    async with db.connection() as conn:
        charge = await conn.fetchrow(
            "SELECT amount_captured, captured FROM charges WHERE merchant_id = $1 AND id = $2",
            merchant.merchant["id"],
            charge_id,
        )
    assert (charge["captured"], charge["amount_captured"]) == (True, 3000)
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def test_a_full_capture_has_nothing_to_release(db, client, merchant, api_url, sandbox):
    pi = client.v1.payment_intents.create(
        {
            "amount": 4000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    pi = client.v1.payment_intents.capture(pi.id)
    assert pi.amount_received == 4000
    async with db.connection() as conn:
        queued = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
            "'payments:release_remainder' AND args->>'charge_id' = $1",
            pi.latest_charge,
        )
    assert queued == 0
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    try:
        outcome = await expiry.release_remainder(
            Payments(db, registry), merchant.merchant["id"], False, pi.latest_charge
        )
    finally:
        await registry.close()
    assert outcome == "nothing to release"
