"""Buy now, pay later (Stripe's ``klarna`` type) through the stripe SDK against the sandbox's
Deferro: a redirect to the provider's page, approval (credit check) and capture, with the
merchant's funds available only after Deferro's deferred payout; declines in both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import stripe

from kassa.ledger import service as ledger
from tests.payments.async_support import event_types_for, pending_balance, shopper

RETURN_URL = "https://shop.example/order/complete"


def pay(client, email: str, amount: int = 12000, currency: str = "eur"):
    pm = client.v1.payment_methods.create(
        {"type": "klarna", "billing_details": {"email": email, "name": "Jenny Rosen"}}
    )
    return client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": currency,
            "payment_method_types": ["klarna"],
            "payment_method": pm.id,
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )


def _redirect_status(back: httpx.Response) -> str:
    assert back.status_code == 303
    assert back.headers["location"].startswith(RETURN_URL)
    return dict(parse_qsl(urlsplit(back.headers["location"]).query))["redirect_status"]


async def test_approve_capture_deferred_settlement_and_refund(client, db, sandbox, merchant):
    before = pending_balance(client, "eur")
    pi = pay(client, "shopper@example.com")
    assert pi.status == "requires_action"
    page = pi.next_action.redirect_to_url.url
    assert page.startswith(sandbox["services"]["bnpl"]["base_url"] + "/pay/")
    assert _redirect_status(shopper(page, {"decision": "approve"})) == "succeeded"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 12000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.captured, charge.payment_method_details.type) == (
        "succeeded",
        True,
        "klarna",
    )
    assert charge.payment_method_details.klarna.payment_method_category == "pay_later"
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net) == (12000, 378, 11622)
    # Deferro pays out 7 days after the capture: the funds are available only after that,
    # later than a card payment's.
    wait = timedelta(seconds=txn.available_on - txn.created)
    assert timedelta(days=7) < wait <= timedelta(days=8)
    assert pending_balance(client, "eur") == before + 11622
    assert event_types_for(client, pi.id)[-1] == "payment_intent.succeeded"
    checkout = httpx.get(
        f"{sandbox['services']['bnpl']['base_url']}/admin/transactions",
        params={"reference": charge.id},
    ).json()
    [record] = checkout["data"] if isinstance(checkout, dict) else checkout
    assert (record["status"], record["captured_amount"]) == ("captured", 12000)

    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 2000})
    assert refund.status == "succeeded"
    assert pending_balance(client, "eur") == before + 9622
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


@pytest.mark.parametrize(
    ("email", "decision"),
    [("declined@deferro.test", "approve"), ("shopper@example.com", "decline")],
    ids=["credit_check", "customer"],
)
def test_declined(client, email, decision):
    before = pending_balance(client, "eur")
    pi = pay(client, email, 5000)
    back = shopper(pi.next_action.redirect_to_url.url, {"decision": decision})
    assert _redirect_status(back) == "failed"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert (after.status, after.last_payment_error.code) == (
        "requires_payment_method",
        "payment_method_provider_decline",
    )
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.balance_transaction) == ("failed", None)
    assert pending_balance(client, "eur") == before


def test_klarna_needs_an_email(client):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create({"type": "klarna"})
    assert err.value.param == "billing_details[email]"
    assert client.v1.payment_methods.list({"type": "klarna"}).data == []


async def test_manual_capture_books_the_deferred_payout_date(client, db, merchant):
    """``capture_method=manual``: approval leaves the payment ``requires_capture``; the
    capture books ``available_on`` at Deferro's deferred payout, as the automatic path does."""
    pm = client.v1.payment_methods.create(
        {"type": "klarna", "billing_details": {"email": "shopper@example.com"}}
    )
    pi = client.v1.payment_intents.create(
        {
            "amount": 8000,
            "currency": "eur",
            "payment_method_types": ["klarna"],
            "payment_method": pm.id,
            "capture_method": "manual",
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    back = shopper(pi.next_action.redirect_to_url.url, {"decision": "approve"})
    assert _redirect_status(back) in ("succeeded", "processing")
    held = client.v1.payment_intents.retrieve(pi.id)
    assert (held.status, held.amount_capturable) == ("requires_capture", 8000)
    before = pending_balance(client, "eur")
    done = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 6000})
    assert (done.status, done.amount_received) == ("succeeded", 6000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.captured, charge.amount_captured) == (True, 6000)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.type, txn.amount, txn.fee, txn.net) == ("charge", 6000, 204, 5796)
    # Deferro pays out 7 days after the capture: available the midnight (UTC) after that,
    # not two days on as for a card.
    created = datetime.fromtimestamp(txn.created, UTC)
    payout_day = (created + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert txn.available_on == int((payout_day + timedelta(days=1)).timestamp())
    assert pending_balance(client, "eur") == before + 5796
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def test_partial_capture_closes_the_checkout_and_queues_no_release(client, db, sandbox):
    """Deferro closes a checkout when it is captured: the remainder of a partial capture is
    released by the provider itself (the checkout is ``captured``, it takes no further
    capture or cancel), so Kassa queues no release job for it."""
    pm = client.v1.payment_methods.create(
        {"type": "klarna", "billing_details": {"email": "shopper@example.com"}}
    )
    pi = client.v1.payment_intents.create(
        {
            "amount": 9000,
            "currency": "eur",
            "payment_method_types": ["klarna"],
            "payment_method": pm.id,
            "capture_method": "manual",
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    shopper(pi.next_action.redirect_to_url.url, {"decision": "approve"})
    done = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 5000})
    assert (done.status, done.amount_received) == ("succeeded", 5000)
    base = sandbox["services"]["bnpl"]["base_url"]
    found = httpx.get(f"{base}/admin/transactions", params={"reference": pi.latest_charge}).json()
    [record] = found["data"] if isinstance(found, dict) else found
    assert (record["status"], record["amount"], record["captured_amount"]) == (
        "captured",
        9000,
        5000,
    )
    async with db.connection() as conn:
        queued = await conn.fetchval(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
            "'payments:release_remainder' AND args->>'charge_id' = $1",
            pi.latest_charge,
        )
    assert queued == 0
