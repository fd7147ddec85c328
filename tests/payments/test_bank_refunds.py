"""Refunds of bank debits through the stripe SDK: a settled ``us_bank_account`` or
``sepa_debit`` payment is refunded by a credit transfer (the sandbox bank's payout) back to
the debited account. The refund is ``pending`` (money booked) until the bank says the credit
arrived (``succeeded``) or came back (``failed``, the money reversed), by signed notification
into the PSP inbox or by the daily inquiry."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson
import pytest
import stripe

from kassa.connectors.configuration import sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.payments.service import async_methods, psp_events, refund_outcomes, refunds
from kassa.payments.service.context import Payments
from tests.payments.async_support import (
    DAY,
    advance,
    event_types_for,
    notifications_to_kassa,
    pending_balance,
    until_stored,
)
from tests.payments.test_bank_debits import IBAN_SETTLES, LATE_R10, SETTLES, ach, debit, sepa


@pytest.fixture
async def payments(db, sandbox):
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    yield Payments(db, registry)
    await registry.close()


@pytest.fixture
def bank(sandbox, api_url):
    with notifications_to_kassa(sandbox, api_url, "bank") as url:
        yield url


def credits_at_bank(sandbox: dict[str, Any], reference: str) -> list[dict[str, Any]]:
    """What the bank itself holds under ``reference`` (its truth, not Kassa's)."""
    url = sandbox["services"]["bank"]["base_url"]
    data = httpx.get(f"{url}/admin/transactions", params={"reference": reference}).json()
    return list(data["data"])


async def refund_rows(db: Database, refund_id: str) -> list[Any]:
    async with db.connection() as conn:
        return await conn.fetch(
            "SELECT event_id, kind, outcome FROM psp_inbox "
            "WHERE connector = 'bank' AND event->>'operation_reference' = $1",
            refund_id,
        )


async def until_refund_stored(db: Database, refund_id: str) -> None:
    deadline = time.monotonic() + 20
    while not await refund_rows(db, refund_id):
        assert time.monotonic() < deadline, f"no bank notification for {refund_id}"
        await asyncio.sleep(0.05)


async def settled_ach(client, db, sandbox, payments, amount: int, account: str = SETTLES):
    """A debit of ``amount`` that the rail settled (notification applied)."""
    pi = debit(client, ach(client, account), amount)
    advance(sandbox, 3 * DAY + 1)
    await until_stored(db, "bank", pi.latest_charge)
    await psp_events.process_inbox(payments)
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    return pi


async def test_partial_and_full_ach_refund_by_notification(
    client, db, bank, sandbox, payments, merchant
):
    pi = await settled_ach(client, db, sandbox, payments, 5000)
    charge_id = pi.latest_charge
    settled = pending_balance(client, "usd")

    partial = client.v1.refunds.create({"charge": charge_id, "amount": 2000})
    assert (partial.status, partial.amount, partial.payment_intent) == ("pending", 2000, pi.id)
    # Booked at once, like a card refund: merchant pending → bank clearing; the fee is kept.
    txn = client.v1.balance_transactions.retrieve(partial.balance_transaction)
    assert (txn.type, txn.amount, txn.fee, txn.net) == ("refund", -2000, 0, -2000)
    assert pending_balance(client, "usd") == settled - 2000
    [credit] = credits_at_bank(sandbox, partial.id)
    assert (credit["object"], credit["rail"], credit["amount"], credit["currency"]) == (
        "payout",
        "ach",
        2000,
        "USD",
    )
    assert (credit["status"], credit["account"]["account_last4"]) == ("in_transit", "6789")
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (2000, False)

    # More than remains: a 400 naming the amount that changes nothing.
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create({"charge": charge_id, "amount": 3001})
    assert (err.value.http_status, err.value.code, err.value.param) == (
        400,
        "amount_too_large",
        "amount",
    )
    assert pending_balance(client, "usd") == settled - 2000
    assert len(client.v1.refunds.list({"charge": charge_id}).data) == 1

    rest = client.v1.refunds.create({"payment_intent": pi.id})
    assert (rest.status, rest.amount) == ("pending", 3000)
    assert pending_balance(client, "usd") == settled - 5000
    assert client.v1.charges.retrieve(charge_id).refunded is True

    # A day later both credits arrive; the bank says so by signed notification.
    advance(sandbox, DAY + 1)
    await until_refund_stored(db, partial.id)
    await until_refund_stored(db, rest.id)
    assert await psp_events.process_inbox(payments) >= 2
    for refund in (partial, rest):
        done = client.v1.refunds.retrieve(refund.id)
        assert done.status == "succeeded"
        assert event_types_for(client, refund.id) == ["refund.created", "charge.refund.updated"]
        [row] = await refund_rows(db, refund.id)
        assert row["outcome"] == "refund succeeded"
        assert credits_at_bank(sandbox, refund.id)[0]["status"] == "paid"
    # Nothing moves on confirmation: the money went when the refund was booked.
    assert pending_balance(client, "usd") == settled - 5000
    txns = client.v1.balance_transactions.list({"limit": 100}).data
    assert sorted(t.amount for t in txns if t.type == "refund") == [-3000, -2000]
    # The daily inquiry, when it comes, finds them decided.
    m = merchant.merchant["id"]
    assert await refunds.inquire_bank_refund(payments, m, False, rest.id) == "succeeded"
    assert (await ledger.verify(db, m)).ok


async def test_sepa_refund_resolved_by_inquiry_without_notifications(
    client, db, sandbox, payments, merchant
):
    """No notification is configured: the scheduled inquiry learns the credit arrived."""
    m = merchant.merchant["id"]
    pi = debit(client, sepa(client, IBAN_SETTLES), 1999, "eur")
    advance(sandbox, 3 * DAY + 1)
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    settled = pending_balance(client, "eur")
    refund = client.v1.refunds.create({"payment_intent": pi.id, "amount": 999})
    assert refund.status == "pending"
    assert pending_balance(client, "eur") == settled - 999
    [credit] = credits_at_bank(sandbox, refund.id)
    assert (credit["rail"], credit["currency"], credit["account"]["iban_last4"]) == (
        "sepa",
        "EUR",
        "3000",
    )
    async with db.connection() as conn:
        [job] = await conn.fetch(
            "SELECT args FROM procrastinate_jobs WHERE task_name = $1 AND args->>'refund_id' = $2",
            refund_outcomes.INQUIRY_JOB,
            refund.id,
        )
    args = job["args"]
    assert (orjson.loads(args) if isinstance(args, str) else args)["attempt"] == 1
    # In transit still: asked again a day later.
    assert await refunds.inquire_bank_refund(payments, m, False, refund.id) == "pending"
    assert client.v1.refunds.retrieve(refund.id).status == "pending"
    advance(sandbox, DAY + 1)
    assert await refunds.inquire_bank_refund(payments, m, False, refund.id, 2) == "succeeded"
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert event_types_for(client, refund.id)[-1] == "charge.refund.updated"
    assert pending_balance(client, "eur") == settled - 999
    # Asking again changes nothing.
    assert await refunds.inquire_bank_refund(payments, m, False, refund.id, 3) == "succeeded"
    assert len(client.v1.balance_transactions.list({"source": refund.id}).data) == 1
    assert (await ledger.verify(db, m)).ok


def _signed_bank_notification(sandbox: dict[str, Any], api_url: str, event: dict[str, Any]):
    """Deliver ``event`` to Kassa as the bank would: JSON signed with its secret."""
    body = orjson.dumps(event)
    stamp = str(int(time.time()))
    secret = sandbox["services"]["bank"]["webhook_secret"]
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{api_url}/psp/bank/webhooks",
        content=body,
        headers={"content-type": "application/json", "cindral-signature": f"t={stamp},v1={digest}"},
    )


async def test_returned_credit_fails_the_refund_and_reverses_the_money(
    client, db, sandbox, api_url, payments, merchant
):
    """The bank returns the credit (the account was closed since the debit): the refund fails
    and the money comes back to the merchant's balance by reversing transfers. (No sandbox
    account settles debits yet refuses credits, so the bank's notification is sent here,
    signed with its secret, about the real credit transfer.)"""
    m = merchant.merchant["id"]
    pi = debit(client, ach(client, SETTLES), 4000)
    advance(sandbox, 3 * DAY + 1)
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    settled = pending_balance(client, "usd")
    refund = client.v1.refunds.create({"charge": pi.latest_charge})
    assert (refund.status, refund.amount) == ("pending", 4000)
    assert pending_balance(client, "usd") == settled - 4000
    [credit] = credits_at_bank(sandbox, refund.id)
    returned = {**credit, "status": "failed", "failure_code": "account_closed"}
    event = {"id": f"evt_test_{refund.id}", "type": "payout.failed", "created": 1, "data": returned}
    answer = _signed_bank_notification(sandbox, api_url, event)
    assert answer.status_code == 200
    assert _signed_bank_notification(sandbox, api_url, event).status_code == 200  # duplicate
    await psp_events.process_inbox(payments)
    failed = client.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "account_closed")
    assert pending_balance(client, "usd") == settled
    txns = client.v1.balance_transactions.list({"source": refund.id}).data
    assert sorted((t.type, t.amount) for t in txns) == [("refund", -4000), ("refund_failure", 4000)]
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert event_types_for(client, refund.id) == ["refund.created", "charge.refund.updated"]
    [row] = await refund_rows(db, refund.id)
    assert row["outcome"] == "refund failed: reversed"
    # The inquiry (and any late notification) changes nothing more.
    assert await refunds.inquire_bank_refund(payments, m, False, refund.id) == "failed"
    assert pending_balance(client, "usd") == settled
    assert (await ledger.verify(db, m)).ok


async def test_unsettled_or_returned_debits_are_not_refundable(
    client, db, bank, sandbox, payments, merchant
):
    pi = debit(client, ach(client, SETTLES), 3000)
    assert pi.status == "processing"
    before = pending_balance(client, "usd")
    for params, param in (
        ({"payment_intent": pi.id}, "payment_intent"),
        ({"charge": pi.latest_charge, "amount": 100}, "charge"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.refunds.create(params)
        assert (err.value.http_status, err.value.code, err.value.param) == (
            400,
            "charge_not_refundable",
            param,
        )
    assert client.v1.refunds.list({"payment_intent": pi.id}).data == []
    assert credits_at_bank(sandbox, pi.latest_charge)[0]["object"] == "debit"
    assert pending_balance(client, "usd") == before

    # Settled, then returned as unauthorised: the bank took the money back already.
    late = await settled_ach(client, db, sandbox, payments, 2500, LATE_R10)
    advance(sandbox, 5 * DAY + 1)
    await until_stored(db, "bank", late.latest_charge, 2)
    await psp_events.process_inbox(payments)
    assert client.v1.charges.retrieve(late.latest_charge).status == "failed"
    returned = pending_balance(client, "usd")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.refunds.create({"charge": late.latest_charge})
    assert (err.value.code, err.value.param) == ("charge_not_refundable", "charge")
    assert pending_balance(client, "usd") == returned
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def _bank_clearing(db: Database, merchant_id: str) -> int:
    """What Kassa's books say the bank owes this merchant (debit-normal clearing)."""
    totals = await ledger.totals(
        db, merchant_id, False, owner="psp:bank", purpose="clearing", currency="usd"
    )
    found = totals.get(("psp:bank", "clearing", "usd"))
    return -found.posted if found is not None else 0


async def test_late_return_after_a_partial_refund_reverses_the_whole_debit(
    client, db, bank, sandbox, payments, merchant
):
    """The bank takes the whole debit back on a late R10 return, whatever was refunded: the
    reversal is the full captured amount, and the refund already booked stays booked, so the
    clearing account follows the bank's own movements (debit in, credit out, debit back)."""
    m = merchant.merchant["id"]
    before, clearing_before = pending_balance(client, "usd"), await _bank_clearing(db, m)
    pi = await settled_ach(client, db, sandbox, payments, 4000, LATE_R10)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    fee = client.v1.balance_transactions.retrieve(charge.balance_transaction).fee
    refund = client.v1.refunds.create({"charge": charge.id, "amount": 1000})
    assert pending_balance(client, "usd") == before + 4000 - fee - 1000
    advance(sandbox, 5 * DAY + 1)  # the credit arrives, then the debit is returned (R10)
    await until_refund_stored(db, refund.id)
    await until_stored(db, "bank", charge.id, 2)
    await psp_events.process_inbox(payments)
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.status, charge.failure_code, charge.amount_refunded) == (
        "failed",
        "debit_not_authorized",
        1000,
    )
    txns = client.v1.balance_transactions.list({"source": charge.id}).data
    assert sorted((t.type, t.amount) for t in txns) == [
        ("charge", 4000),
        ("payment_failure_refund", -4000),
    ]
    # The customer got the refund and the whole debit back; the merchant bears both.
    assert pending_balance(client, "usd") == before - fee - 1000
    # The bank's own records: 4000 debited and returned, 1000 credited.
    [debit_record] = [r for r in credits_at_bank(sandbox, charge.id) if r["object"] == "debit"]
    [credit] = credits_at_bank(sandbox, refund.id)
    assert (debit_record["status"], debit_record["amount"]) == ("returned", 4000)
    assert (credit["status"], credit["amount"]) == ("paid", 1000)
    bank_net = debit_record["amount"] - credit["amount"] - debit_record["amount"]
    assert await _bank_clearing(db, m) - clearing_before == bank_net == -1000
    assert (await ledger.verify(db, m)).ok


async def test_detached_bank_account_still_settles_and_refunds(
    client, db, sandbox, payments, merchant
):
    """Detaching the payment method while its debit is on the rail stops future debits, not
    this one: the inquiry (which opens no vault) still settles it, and a refund still reaches
    the account the money came from."""
    m = merchant.merchant["id"]
    customer = client.v1.customers.create({"name": "Jenny Rosen"})
    pm = ach(client, SETTLES)
    client.v1.payment_methods.attach(pm.id, {"customer": customer.id})
    pi = client.v1.payment_intents.create(
        {
            "amount": 2600,
            "currency": "usd",
            "customer": customer.id,
            "payment_method_types": ["us_bank_account"],
            "payment_method": pm.id,
            "confirm": True,
        }
    )
    assert pi.status == "processing"
    client.v1.payment_methods.detach(pm.id)
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "processing"
    advance(sandbox, 3 * DAY + 1)
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 2600)
    settled = pending_balance(client, "usd")
    refund = client.v1.refunds.create({"charge": pi.latest_charge, "amount": 600})
    assert (refund.status, refund.amount) == ("pending", 600)
    assert pending_balance(client, "usd") == settled - 600
    [credit] = credits_at_bank(sandbox, refund.id)
    assert (credit["amount"], credit["account"]["account_last4"]) == (600, "6789")
    advance(sandbox, DAY + 1)
    assert await refunds.inquire_bank_refund(payments, m, False, refund.id) == "succeeded"
    # A new debit from the detached account is refused.
    with pytest.raises(stripe.InvalidRequestError):
        debit(client, pm, 1000)
    assert (await ledger.verify(db, m)).ok
