"""PaymentIntents through the official stripe SDK: create, confirm, capture, cancel, declines,
and the money each moves."""

from __future__ import annotations

import pytest
import stripe

DECLINES = [
    ("pm_card_visa_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_visa_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_visa_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_visa_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", None),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", None),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", None),
]


def test_automatic_capture_books_the_amount_less_the_fee(client):
    pi = client.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert pi.status == "succeeded"
    assert pi.amount_received == 2000
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.captured, charge.amount_captured) == ("succeeded", True, 2000)
    assert charge.payment_method_details.card.last4 == "4242"
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    fee = (2000 * 290 + 5000) // 10000 + 30
    assert (txn.amount, txn.fee, txn.net, txn.type) == (2000, fee, 2000 - fee, "charge")
    balance = client.v1.balance.retrieve()
    assert [(b.currency, b.amount) for b in balance.pending] == [("usd", 2000 - fee)]


def test_manual_capture_full_and_partial(client):
    pi = client.v1.payment_intents.create(
        {
            "amount": 5000,
            "currency": "eur",
            "payment_method": "pm_card_mastercard",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    assert (pi.status, pi.amount_capturable) == ("requires_capture", 5000)
    captured = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 3000})
    assert (captured.status, captured.amount_received) == ("succeeded", 3000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_captured, charge.captured) == (3000, True)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.capture(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"

    full = client.v1.payment_intents.create(
        {
            "amount": 1234,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
        }
    )
    assert full.status == "requires_confirmation"
    full = client.v1.payment_intents.confirm(full.id)
    assert full.status == "requires_capture"
    assert client.v1.payment_intents.capture(full.id).amount_received == 1234


def test_cancel_voids_an_authorisation(client):
    pi = client.v1.payment_intents.create(
        {
            "amount": 700,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    canceled = client.v1.payment_intents.cancel(
        pi.id, {"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert canceled.amount_capturable == 0
    draft = client.v1.payment_intents.create({"amount": 700, "currency": "usd"})
    assert draft.status == "requires_payment_method"
    assert client.v1.payment_intents.cancel(draft.id).status == "canceled"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(draft.id, {"payment_method": "pm_card_visa"})
    assert err.value.code == "payment_intent_unexpected_state"


@pytest.mark.parametrize(("token", "code", "decline_code"), DECLINES)
def test_declines_answer_card_errors(client, token, code, decline_code):
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd"})
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": token})
    assert err.value.code == code
    assert err.value.error.decline_code == decline_code
    assert err.value.error.payment_intent.status == "requires_payment_method"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.code == code
    charge = client.v1.charges.retrieve(after.latest_charge)
    assert (charge.status, charge.failure_code) == ("failed", code)
    # The customer may try another card.
    assert client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"}).status == (
        "succeeded"
    )


def test_zero_and_three_decimal_currencies(client):
    jpy = client.v1.payment_intents.create(
        {"amount": 5000, "currency": "jpy", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert (jpy.status, jpy.amount_received, jpy.currency) == ("succeeded", 5000, "jpy")
    kwd = client.v1.payment_intents.create(
        {"amount": 1234, "currency": "kwd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert (kwd.status, kwd.amount_received) == ("succeeded", 1234)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create({"amount": 10, "currency": "usd"})
    assert (err.value.code, err.value.param) == ("amount_too_small", "amount")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create({"amount": 100, "currency": "xyz"})
    assert err.value.param == "currency"


def test_list_filters_and_expand(client):
    cus = client.v1.customers.create({"email": "buyer@example.com"})
    made = [
        client.v1.payment_intents.create(
            {"amount": 1000 + i, "currency": "usd", "customer": cus.id}
        ).id
        for i in range(12)
    ]
    listed = [
        p.id
        for p in client.v1.payment_intents.list({"customer": cus.id, "limit": 5}).auto_paging_iter()
    ]
    assert listed == list(reversed(made))
    pi = client.v1.payment_intents.create(
        {
            "amount": 900,
            "currency": "usd",
            "customer": cus.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "expand": ["latest_charge", "customer"],
        }
    )
    assert pi.latest_charge.object == "charge"
    assert pi.customer.id == cus.id
    charges = client.v1.charges.list({"payment_intent": pi.id})
    assert [c.id for c in charges.data] == [pi.latest_charge.id]


def test_refunds_full_partial_and_over_refund(client):
    pi = client.v1.payment_intents.create(
        {"amount": 10000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    first = client.v1.refunds.create({"payment_intent": pi.id, "amount": 3000})
    second = client.v1.refunds.create(
        {"charge": pi.latest_charge, "amount": 2000, "reason": "requested_by_customer"}
    )
    assert first.status in ("succeeded", "pending")
    assert second.reason == "requested_by_customer"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (5000, False)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create({"charge": charge.id, "amount": 5001})
    assert (err.value.code, err.value.param) == ("amount_too_large", "amount")
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 5000  # nothing changed
    rest = client.v1.refunds.create({"charge": charge.id})
    assert rest.amount == 5000
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.amount_refunded, charge.refunded) == (10000, True)
    listed = client.v1.refunds.list({"charge": charge.id})
    assert [r.id for r in listed.data] == [rest.id, second.id, first.id]
    txns = client.v1.balance_transactions.list({"type": "refund"}).data
    assert sorted(t.amount for t in txns) == [-5000, -3000, -2000]
    fee = (10000 * 290 + 5000) // 10000 + 30
    balance = client.v1.balance.retrieve()
    assert [(b.currency, b.amount) for b in balance.pending] == [("usd", -fee)]


def test_a_card_is_refused_where_the_intent_allows_only_other_types(client):
    pi = client.v1.payment_intents.create(
        {"amount": 1500, "currency": "eur", "payment_method_types": ["sepa_debit"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": "pm_card_visa"})
    assert (err.value.code, err.value.param) == (
        "payment_intent_incompatible_payment_method",
        "payment_method",
    )
    after = client.v1.payment_intents.retrieve(pi.id)
    assert (after.status, after.latest_charge) == ("requires_payment_method", None)
