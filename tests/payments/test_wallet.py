"""The wallet (Stripe's ``paypal`` type) through the stripe SDK against the sandbox's Purslane:
``requires_action`` with a redirect to the wallet's approval page; the shopper approves (Kassa
captures, ``succeeded``), cancels, or pays with a declined funding instrument
(``requires_payment_method``); an approval notified by webhook alone is finished too."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import stripe

from kassa.connectors.configuration import sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.service import async_methods, psp_events
from kassa.payments.service.context import Payments
from tests.payments.async_support import (
    event_types_for,
    inbox_rows,
    notifications_to_kassa,
    pending_balance,
    shopper,
    until_stored,
)

RETURN_URL = "https://shop.example/checkout/done"


@pytest.fixture
async def payments(db, sandbox):
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    yield Payments(db, registry)
    await registry.close()


def pay(client, amount: int = 4250, currency: str = "eur"):
    pm = client.v1.payment_methods.create({"type": "paypal"})
    assert pm.type == "paypal"
    return client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": currency,
            "payment_method_types": ["paypal"],
            "payment_method": pm.id,
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )


def _redirect_status(back: httpx.Response) -> str:
    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith(RETURN_URL)
    return dict(parse_qsl(urlsplit(location).query))["redirect_status"]


async def test_approve_captures_then_refund(client, db, sandbox, merchant):
    before = pending_balance(client, "eur")
    pi = pay(client)
    assert pi.status == "requires_action"
    assert pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == RETURN_URL
    page = pi.next_action.redirect_to_url.url
    assert page.startswith(sandbox["services"]["wallet"]["base_url"] + "/checkout/")
    assert pending_balance(client, "eur") == before
    back = shopper(page, {"action": "approve", "buyer": "buyer@purslane.test"})
    assert _redirect_status(back) == "succeeded"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received, done.next_action) == ("succeeded", 4250, None)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.captured, charge.amount_captured) == ("succeeded", True, 4250)
    paypal = charge.payment_method_details.paypal
    assert paypal.payer_email == "buyer@purslane.test"
    assert paypal.transaction_id
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net) == (4250, 153, 4097)
    assert pending_balance(client, "eur") == before + 4097
    assert event_types_for(client, pi.id) == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    ]
    # A reload of the return page changes nothing.
    with httpx.Client(trust_env=False) as browser:
        assert browser.get(back.request.url).status_code == 303
    assert len(client.v1.balance_transactions.list({"source": charge.id}).data) == 1

    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 1000})
    assert (refund.status, refund.amount) == ("succeeded", 1000)
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1000
    assert pending_balance(client, "eur") == before + 3097
    orders = httpx.get(
        f"{sandbox['services']['wallet']['base_url']}/admin/transactions",
        params={"reference": charge.id},
    ).json()
    [order] = orders["data"] if isinstance(orders, dict) else orders
    assert order["capture"]["refunded_amount"]["value"] == "10.00"
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


def test_shopper_cancels(client):
    before = pending_balance(client, "eur")
    pi = pay(client, 1200)
    back = shopper(pi.next_action.redirect_to_url.url, {"action": "cancel"})
    assert _redirect_status(back) == "failed"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.code == "payment_intent_payment_attempt_failed"
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.captured, charge.balance_transaction) == ("failed", False, None)
    assert pending_balance(client, "eur") == before
    assert event_types_for(client, pi.id)[-1] == "payment_intent.payment_failed"


def test_declined_funding_instrument(client):
    pi = pay(client, 999, "usd")
    back = shopper(
        pi.next_action.redirect_to_url.url,
        {"action": "approve", "buyer": "declined@purslane.test"},
    )
    assert _redirect_status(back) == "failed"
    after = client.v1.payment_intents.retrieve(pi.id)
    assert (after.status, after.last_payment_error.code) == (
        "requires_payment_method",
        "payment_method_provider_decline",
    )


async def test_approval_by_notification_alone(client, db, sandbox, api_url, payments, merchant):
    """The shopper approves and closes the browser before coming back: the wallet's signed
    notification schedules the verification, which captures."""
    with notifications_to_kassa(sandbox, api_url, "wallet"):
        pi = pay(client, 3000)
        page = pi.next_action.redirect_to_url.url
        with httpx.Client(trust_env=False) as browser:
            answer = browser.post(page, data={"action": "approve"})
        assert answer.status_code == 303  # ...and never followed
        await until_stored(db, "wallet", pi.latest_charge)
        await psp_events.process_inbox(payments)
    [row] = await inbox_rows(db, "wallet", pi.latest_charge)
    assert row["outcome"] == "verification scheduled"
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_action"
    # What the scheduled job runs:
    m = merchant.merchant["id"]
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 3000)
    # The shopper's late return changes nothing.
    with httpx.Client(trust_env=False) as browser:
        late = browser.get(answer.headers["location"])
    assert _redirect_status(late) == "succeeded"
    assert len(client.v1.balance_transactions.list({"source": pi.latest_charge}).data) == 1


def test_return_url_is_required(client):
    pm = client.v1.payment_methods.create({"type": "paypal"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "eur", "payment_method": pm.id, "confirm": True}
        )
    assert err.value.param == "return_url"
    assert client.v1.payment_intents.list().data == []


def test_card_attempt_at_the_wallet_return_route_leaves_it_waiting(client, api_url):
    """A 3-D Secure card attempt's id sent to the wallet/BNPL return route is refused before
    the intent moves: it still waits for the challenge, which then finishes normally."""
    pi = client.v1.payment_intents.create(
        {
            "amount": 2500,
            "currency": "eur",
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    assert pi.status == "requires_action"
    with httpx.Client(trust_env=False) as browser:
        wrong = browser.get(f"{api_url}/payments/redirect/{pi.latest_charge}/return")
    assert wrong.status_code == 400
    still = client.v1.payment_intents.retrieve(pi.id)
    assert (still.status, still.next_action.type) == ("requires_action", "redirect_to_url")
    challenge = still.next_action.redirect_to_url.url
    with httpx.Client(timeout=10.0, trust_env=False) as browser:
        answer = browser.post(challenge, data={"action": "authenticate"})
        assert answer.status_code == 303
        back = browser.get(answer.headers["location"])
    assert _redirect_status(back) == "succeeded"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 2500)


def test_wallet_attempt_at_the_3ds_return_route_leaves_it_waiting(client, api_url):
    """A wallet attempt's id sent to the 3-D Secure return route is refused before the intent
    moves: it still waits for the buyer, whose approval then captures."""
    pi = pay(client, 1500)
    with httpx.Client(trust_env=False) as browser:
        wrong = browser.get(f"{api_url}/payments/3ds/{pi.latest_charge}/return")
    assert wrong.status_code == 400
    still = client.v1.payment_intents.retrieve(pi.id)
    assert (still.status, still.next_action.type) == ("requires_action", "redirect_to_url")
    back = shopper(still.next_action.redirect_to_url.url, {"action": "approve"})
    assert _redirect_status(back) == "succeeded"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 1500)


def test_partial_capture_of_a_paypal_payment_is_refused(client, sandbox):
    """Purslane captures an order whole: a smaller ``amount_to_capture`` would book less than
    the wallet took, so it is a 400 naming it; the full capture then goes through."""
    pm = client.v1.payment_methods.create({"type": "paypal"})
    pi = client.v1.payment_intents.create(
        {
            "amount": 5000,
            "currency": "eur",
            "payment_method_types": ["paypal"],
            "payment_method": pm.id,
            "capture_method": "manual",
            "confirm": True,
            "return_url": RETURN_URL,
        }
    )
    back = shopper(pi.next_action.redirect_to_url.url, {"action": "approve"})
    assert _redirect_status(back) == "succeeded"
    held = client.v1.payment_intents.retrieve(pi.id)
    assert (held.status, held.amount_capturable) == ("requires_capture", 5000)
    before = pending_balance(client, "eur")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 3000})
    assert (err.value.http_status, err.value.param) == (400, "amount_to_capture")
    orders = httpx.get(
        f"{sandbox['services']['wallet']['base_url']}/admin/transactions",
        params={"reference": pi.latest_charge},
    ).json()
    [order] = orders["data"] if isinstance(orders, dict) else orders
    assert order.get("capture") is None  # nothing captured at the wallet
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_capture"
    assert pending_balance(client, "eur") == before
    done = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 5000})
    assert (done.status, done.amount_received) == ("succeeded", 5000)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.amount_captured == 5000


async def test_rate_limited_completion_is_no_verdict(client, sandbox, payments, merchant):
    """A 429 from the wallet while Kassa reads the buyer's approval is no decline: the intent
    waits in ``requires_action``, and asking again later captures."""
    url = sandbox["services"]["wallet"]["base_url"]
    pi = pay(client, 2100)
    with httpx.Client(trust_env=False) as browser:
        answer = browser.post(pi.next_action.redirect_to_url.url, data={"action": "approve"})
        assert answer.status_code == 303
        httpx.post(f"{url}/admin/faults", json={"error_rates": {"429": 1.0}}).raise_for_status()
        try:
            back = browser.get(answer.headers["location"])
        finally:
            httpx.delete(f"{url}/admin/faults").raise_for_status()
    assert back.status_code == 303
    waiting = client.v1.payment_intents.retrieve(pi.id)
    assert (waiting.status, waiting.last_payment_error) == ("requires_action", None)
    assert client.v1.charges.retrieve(pi.latest_charge).status == "pending"
    m = merchant.merchant["id"]
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 2100)
