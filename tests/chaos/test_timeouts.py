"""30 % of authorisations applied at the acquirer and then answered too late: nobody is charged
twice, every payment is resolved by the inquiries, and Kassa's books equal the acquirers'."""

from __future__ import annotations

from tests.chaos.support import charge_rows, intent_row, pay


async def test_apply_then_timeout_never_charges_twice(
    db, client, merchant, faults, records, injected, resolve
):
    m = merchant.merchant["id"]
    faults(
        "acquirer_a",
        {"seed": 23, "path_prefix": "/v1/payments", "timeout_rate": 0.3, "hang_s": 3},
    )
    payments = []
    for i in range(24):
        token = "pm_card_visa_chargeDeclined" if i % 6 == 5 else "pm_card_visa"
        payments.append(pay(client, 1500 + i, token))
    timeouts = injected("acquirer_a").get("timeout", 0)
    assert timeouts > 0
    assert "processing" in {status for _, status, _ in payments}

    faults("acquirer_a", {})
    await resolve()

    for pi, _, _ in payments:
        intent = await intent_row(db, m, pi)
        assert intent["status"] in ("succeeded", "requires_payment_method"), intent
        charges = await charge_rows(db, m, pi)
        captured_at_acquirers = 0
        for c in charges:
            held = records(c["connector"], c["id"])
            assert len(held) <= 1  # one reference, at most one payment at the acquirer
            assert c["status"] != "pending"
            assert sum(r["captured"] for r in held) == c["amount_captured"], (c, held)
            captured_at_acquirers += sum(r["captured"] for r in held)
        # Across every attempt and both acquirers, the customer paid once or not at all.
        expected = intent["amount"] if intent["status"] == "succeeded" else 0
        assert captured_at_acquirers == expected == intent["amount_received"]
        assert sum(c["status"] == "succeeded" for c in charges) == (expected > 0)
