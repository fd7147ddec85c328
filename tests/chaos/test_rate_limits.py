"""Acquirer 429s: Kassa waits as ``Retry-After`` says (within its retry budget) and resends
under the same reference; when the acquirer keeps refusing, the payment goes elsewhere."""

from __future__ import annotations

from tests.chaos.support import charge_rows, intent_row, pay


async def test_rate_limited_payments_still_complete(
    db, client, merchant, faults, records, injected
):
    m = merchant.merchant["id"]
    faults("acquirer_a", {"seed": 5, "path_prefix": "/v1/payments", "error_rates": {"429": 0.3}})
    payments = [pay(client, 1100 + i) for i in range(8)]
    assert injected("acquirer_a").get("429", 0) > 0
    for pi, status, _ in payments:
        assert status == "succeeded"
        intent = await intent_row(db, m, pi)
        charges = await charge_rows(db, m, pi)
        held = [r for c in charges for r in records(c["connector"], c["id"])]
        assert sum(r["captured"] for r in held) == intent["amount"] == intent["amount_received"]
        assert [c["status"] for c in charges].count("succeeded") == 1


async def test_an_acquirer_that_keeps_refusing_is_left_for_the_next(
    db, client, merchant, faults, records, injected
):
    m = merchant.merchant["id"]
    # One more 429 than the retries allow: Retry-After is honoured twice, then Kassa cascades.
    faults("acquirer_a", {"path_prefix": "/v1/payments", "script": ["429", "429", "429"]})
    pi, status, _ = pay(client, 1250)
    assert status == "succeeded"
    assert injected("acquirer_a") == {"429": 3}
    charges = await charge_rows(db, m, pi)
    assert [(c["connector"], c["status"], c["outcome"]) for c in charges] == [
        ("acquirer_a", "failed", "not_sent"),
        ("acquirer_b", "succeeded", "captured"),
    ]
    assert "rate limited" in charges[1]["routing"]["reason"]
    assert records("acquirer_a", charges[0]["id"]) == []
    assert (await intent_row(db, m, pi))["amount_received"] == 1250
