"""The error policy on the payment path, through the stripe SDK: a hard decline is final at
the first acquirer; a processing error there cascades to the next as a new attempt."""

from __future__ import annotations

import pytest
import stripe

from tests.factories import new_merchant, stripe_client


async def _charges(db, merchant_id, intent_id):
    async with db.connection() as conn:
        return await conn.fetch(
            "SELECT connector, status, outcome, failure_code, decline_code FROM charges "
            "WHERE merchant_id = $1 AND intent_id = $2 ORDER BY id",
            merchant_id,
            intent_id,
        )


async def test_a_hard_decline_is_never_cascaded(db, api_url, admin):
    merchant = await new_merchant(db)
    client = stripe_client(api_url, merchant.key("secret"))
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.create(
            {
                "amount": 800,
                "currency": "usd",
                "payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds",
                "confirm": True,
            }
        )
    assert caught.value.error is not None
    assert caught.value.error.decline_code == "insufficient_funds"
    pi = caught.value.error.payment_intent
    assert pi is not None
    rows = await _charges(db, merchant.merchant["id"], pi.id)
    assert [(r["status"], r["decline_code"]) for r in rows] == [("failed", "insufficient_funds")]


async def test_a_processing_error_cascades_to_the_next_acquirer(db, api_url, admin):
    merchant = await new_merchant(db)
    client = stripe_client(api_url, merchant.key("secret"))
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.create(
            {
                "amount": 810,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedProcessingError",
                "confirm": True,
            }
        )
    assert caught.value.code == "processing_error"
    assert caught.value.error is not None
    pi = caught.value.error.payment_intent
    assert pi is not None
    assert pi.status == "requires_payment_method"
    rows = await _charges(db, merchant.merchant["id"], pi.id)
    # Both acquirers said processing_error for this test card: two attempts, nothing charged.
    assert [(r["connector"], r["outcome"], r["failure_code"]) for r in rows] == [
        ("acquirer_a", "declined", "processing_error"),
        ("acquirer_b", "declined", "processing_error"),
    ]


async def test_a_decline_after_a_lost_answer_is_not_cascaded(db, api_url, admin):
    """The first try's answer is lost (a 503: it may have been applied), the retry under the
    same reference is declined with a soft code: the attempt fails at that acquirer and is not
    cascaded, since the first try might have charged."""
    merchant = await new_merchant(db)
    client = stripe_client(api_url, merchant.key("secret"))
    admin.faults("acquirer_a", {"path_prefix": "/v1/payments", "script": ["503", "ok"]})
    with pytest.raises(stripe.CardError) as caught:
        client.v1.payment_intents.create(
            {
                "amount": 820,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclinedProcessingError",
                "confirm": True,
            }
        )
    assert caught.value.code == "processing_error"
    assert caught.value.error is not None
    pi = caught.value.error.payment_intent
    assert pi is not None
    rows = await _charges(db, merchant.merchant["id"], pi.id)
    assert [(r["connector"], r["outcome"], r["failure_code"]) for r in rows] == [
        ("acquirer_a", "declined", "processing_error")
    ]
