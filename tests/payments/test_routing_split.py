"""A merchant's 70/30 volume split over 2,000 payments through the stripe SDK: each acquirer's
share lands within 5 points of its weight — counted on Kassa's charges and in the acquirers'
own records — and every payment is captured once, for its amount."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import stripe

from kassa.merchants.service import NewMerchant
from tests.factories import stripe_client

PAYMENTS = 2_000
CONCURRENCY = 16
SPLIT = {"acquirer_a": 70, "acquirer_b": 30}


def acquirer_references(sandbox: dict[str, Any], connector: str) -> set[str]:
    """Our references among the acquirer's own payment records."""
    url = sandbox["services"][connector]["base_url"]
    got = httpx.get(f"{url}/admin/transactions", params={"limit": "100000"}, timeout=60).json()
    return {p["reference"] for p in got["data"]}


def pay_all(client: stripe.StripeClient, amounts: list[int]) -> list[Any]:
    """Confirm one payment per amount, ``CONCURRENCY`` at a time (the SDK's own client)."""

    def one(amount: int) -> Any:
        return client.v1.payment_intents.create(
            {"amount": amount, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
        )

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, amounts))


async def test_a_70_30_split_over_2000_payments(
    api_url: str, merchant: NewMerchant, sandbox: dict[str, Any]
) -> None:
    created = httpx.post(
        f"{api_url}/v1/routing/rules",
        headers={"Authorization": f"Bearer {merchant.key('secret')}"},
        data={
            "priority": "1",
            "currencies[0]": "usd",
            "split[acquirer_a]": "70",
            "split[acquirer_b]": "30",
        },
    )
    assert created.status_code == 200, created.text
    rule_id = created.json()["id"]

    amounts = [500 + (i % 97) * 25 for i in range(PAYMENTS)]
    client = stripe_client(api_url, merchant.key("secret"))
    intents = pay_all(client, amounts)
    assert [(pi.status, pi.amount_received) for pi in intents] == [
        ("succeeded", a) for a in amounts
    ]

    charges = list(client.v1.charges.list({"limit": 100}).auto_paging_iter())
    assert len(charges) == PAYMENTS
    assert {c.id for c in charges} == {pi.latest_charge for pi in intents}
    assert all(c.status == "succeeded" and c.captured for c in charges)
    assert {(c.routing.strategy, c.routing.rule) for c in charges} == {("split", rule_id)}
    assert all(set(c.routing.candidates) == set(SPLIT) for c in charges)  # fallback kept
    by_connector = Counter(c.routing.connector for c in charges)
    shares = {name: 100 * by_connector[name] / PAYMENTS for name in SPLIT}
    print(f"split shares over {PAYMENTS} payments: {shares}")
    for name, weight in SPLIT.items():
        assert abs(shares[name] - weight) <= 5, shares

    # The acquirers saw exactly those payments, each once.
    ours = {c.id for c in charges}
    for name in SPLIT:
        seen = acquirer_references(sandbox, name) & ours
        assert seen == {c.id for c in charges if c.routing.connector == name}, name
    captured = sum(c.amount_captured for c in charges)
    assert captured == sum(amounts)
