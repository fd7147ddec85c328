"""Exactly once: many concurrent confirms of one intent make one authorisation and one capture
at the acquirer — checked through the acquirer's own records — and one set of transfers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe

from kassa.ledger import service as ledger


def _acquirer_records(sandbox, connector: str, reference: str) -> list[dict]:
    url = sandbox["services"][connector]["base_url"]
    got = httpx.get(f"{url}/admin/transactions", params={"reference": reference}).json()
    return got["data"] if isinstance(got, dict) else got


def _confirm_all(client, intent_id: str, keys: list[str]) -> list[object]:
    def confirm(key: str) -> object:
        try:
            return client.v1.payment_intents.confirm(
                intent_id, {"payment_method": "pm_card_visa"}, {"idempotency_key": key}
            ).status
        except stripe.StripeError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=50) as pool:
        return list(pool.map(confirm, keys))


@pytest.mark.parametrize("same_key", [True, False], ids=["one-key", "different-keys"])
async def test_one_hundred_concurrent_confirms(client, sandbox, db, merchant, same_key):
    pi = client.v1.payment_intents.create({"amount": 4321, "currency": "usd"})
    shared = f"confirm-{uuid.uuid4()}"
    keys = [shared if same_key else f"confirm-{uuid.uuid4()}" for _ in range(100)]
    outcomes = _confirm_all(client, pi.id, keys)

    assert "succeeded" in outcomes
    for outcome in outcomes:
        # The others are told the intent is busy or done — never charged again.
        assert outcome == "succeeded" or isinstance(
            outcome, stripe.InvalidRequestError | stripe.APIError | stripe.IdempotencyError
        ), outcome
    charges = client.v1.charges.list({"payment_intent": pi.id}).data
    assert len(charges) == 1
    charge = charges[0]
    records = _acquirer_records(sandbox, charge.routing.connector, charge.id)
    assert len(records) == 1, records
    final = client.v1.payment_intents.retrieve(pi.id)
    assert (final.status, final.amount_received) == ("succeeded", 4321)

    async with db.connection() as conn:
        transfers = await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE merchant_id = $1 AND id LIKE $2",
            merchant.merchant["id"],
            f"{charge.id}:%",
        )
    assert transfers == 2  # the capture and its fee, once
    assert (await ledger.verify(db, merchant.merchant["id"])).ok
