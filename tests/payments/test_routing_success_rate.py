"""Success-rate routing through the stripe SDK: with acquirer_a degraded to 50 % issuer
declines (the sandbox's ``decline_rate``), a merchant rule ranking both acquirers moves the
traffic to acquirer_b; exploration keeps sending acquirer_a a little, so once it recovers its
success rate climbs again. An API process of its own, so the window starts empty."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import stripe

from kassa.merchants.service import NewMerchant
from tests.conftest import start_api, stop_api
from tests.factories import stripe_client

DEGRADED = 600
RECOVERED = 300
CONCURRENCY = 8


def pay_all(client: stripe.StripeClient, n: int) -> list[str]:
    """``n`` payments of 20.00 USD; the charge id of each, captured or declined."""

    def one(_: int) -> str:
        try:
            pi = client.v1.payment_intents.create(
                {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa",
                 "confirm": True}
            )  # fmt: skip
        except stripe.CardError as exc:
            # Only issuer declines are expected; anything else fails the test.
            if exc.code != "card_declined" or exc.error is None or not exc.error.charge:
                raise
            return str(exc.error.charge)
        assert (pi.status, pi.amount_received) == ("succeeded", 2000)
        return str(pi.latest_charge)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, range(n)))


def faults(sandbox: dict[str, Any], config: dict[str, Any] | None) -> None:
    url = sandbox["services"]["acquirer_a"]["base_url"] + "/admin/faults"
    r = httpx.post(url, json=config) if config is not None else httpx.delete(url)
    assert r.status_code == 200, r.text


async def test_a_degraded_acquirer_loses_its_traffic_and_exploration_finds_it_again(
    database_url: str,
    api_url: str,
    log_dir: Path,
    sandbox_manifest: Path,
    sandbox: dict[str, Any],
    merchant: NewMerchant,
) -> None:
    server = start_api(
        database_url,
        log_dir,
        {
            "KASSA_SANDBOX_MANIFEST": str(sandbox_manifest),
            "KASSA_RATE_LIMIT_PER_SECOND": "100000",
            "KASSA_RATE_LIMIT_BURST": "100000",
        },
    )
    try:
        created = httpx.post(
            f"{server.url}/v1/routing/rules",
            headers={"Authorization": f"Bearer {merchant.key('secret')}"},
            json={"priority": 1, "connectors": ["acquirer_a", "acquirer_b"]},
        )
        assert created.status_code == 200, created.text
        client = stripe_client(server.url, merchant.key("secret"))
        faults(sandbox, {"decline_rate": 0.5, "seed": 3})
        degraded = pay_all(client, DEGRADED)
        faults(sandbox, None)
        recovered = pay_all(client, RECOVERED)
    finally:
        faults(sandbox, None)
        stop_api(server)

    client = stripe_client(api_url, merchant.key("secret"))  # the session's API: same data
    charges = {c.id: c for c in client.v1.charges.list({"limit": 100}).auto_paging_iter()}
    assert len(charges) == DEGRADED + RECOVERED
    phase1 = sorted((charges[i] for i in degraded), key=lambda c: c.id)  # ids sort by time
    phase2 = sorted((charges[i] for i in recovered), key=lambda c: c.id)

    # Degraded: most of the traffic moved to acquirer_b, which declined nothing.
    share = Counter(c.routing.connector for c in phase1)
    print(f"degraded phase: {dict(share)} of {DEGRADED}")
    assert share["acquirer_b"] >= 0.8 * DEGRADED, share
    at_a = [c for c in phase1 if c.routing.connector == "acquirer_a"]
    assert all(c.status == "succeeded" for c in phase1 if c.routing.connector == "acquirer_b")
    declined = [c for c in at_a if c.status == "failed"]
    assert declined
    assert {(c.failure_code, c.outcome.reason) for c in declined} == {
        ("card_declined", "generic_decline")
    }
    # Once acquirer_b has proved itself, acquirer_a only gets exploration traffic.
    later = phase1[DEGRADED // 2 :]
    assert all(c.routing.connector == "acquirer_b" for c in later if not c.routing.exploration)
    explored = [c for c in later if c.routing.exploration]
    assert explored
    assert {c.routing.connector for c in explored} == {"acquirer_a"}
    last = later[-1].routing
    assert last.strategy == "success_rate" or last.exploration
    assert last.scores["acquirer_b"]["success_rate"] == 1.0
    assert 0.2 <= last.scores["acquirer_a"]["success_rate"] <= 0.8
    assert last.rule == created.json()["id"]

    # Recovered: exploration keeps probing acquirer_a, every probe succeeds, its rate climbs.
    probes = [c for c in phase2 if c.routing.connector == "acquirer_a"]
    assert probes
    assert all(c.status == "succeeded" for c in probes)
    assert (
        phase2[-1].routing.scores["acquirer_a"]["success_rate"]
        > (last.scores["acquirer_a"]["success_rate"])
    )
    assert all(c.status == "succeeded" for c in phase2)
