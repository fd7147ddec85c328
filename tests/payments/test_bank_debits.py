"""Bank debits through the stripe SDK: ``us_bank_account`` (ACH) and ``sepa_debit`` payment
methods at the sandbox bank. A debit is ``processing`` until the rail settles it
(``succeeded``, money booked) or returns it (``requires_payment_method``); the bank says so by
signed notification into the PSP inbox, or an inquiry finds out. A return after settling
takes the money back."""

from __future__ import annotations

from contextlib import contextmanager

import httpx
import pytest
import stripe

from kassa.connectors.configuration import sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.service import async_methods, psp_events
from kassa.payments.service.context import Payments
from tests.payments.async_support import (
    DAY,
    advance,
    event_types_for,
    inbox_rows,
    notifications_to_kassa,
    pending_balance,
    until_stored,
)

ROUTING = "110000000"
SETTLES, R01, LATE_R10 = "000123456789", "000222222227", "000333333335"
IBAN_SETTLES = "DE89370400440532013000"
IBAN_AM04 = "DE62370400440532013001"


@pytest.fixture
async def payments(db, sandbox):
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    yield Payments(db, registry)
    await registry.close()


@pytest.fixture
def bank(sandbox, api_url):
    with notifications_to_kassa(sandbox, api_url, "bank") as url:
        yield url


def ach(client, account: str):
    return client.v1.payment_methods.create(
        {
            "type": "us_bank_account",
            "us_bank_account": {
                "routing_number": ROUTING,
                "account_number": account,
                "account_holder_type": "individual",
            },
            "billing_details": {"name": "Jenny Rosen"},
        }
    )


def sepa(client, iban: str):
    return client.v1.payment_methods.create(
        {
            "type": "sepa_debit",
            "sepa_debit": {"iban": iban},
            "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"},
        }
    )


def debit(client, pm, amount: int, currency: str = "usd"):
    return client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": currency,
            "payment_method_types": [pm.type],
            "payment_method": pm.id,
            "confirm": True,
        }
    )


async def test_ach_debit_processing_then_settled(client, db, bank, sandbox, payments, merchant):
    pm = ach(client, SETTLES)
    assert (pm.type, pm.us_bank_account.last4, pm.us_bank_account.routing_number) == (
        "us_bank_account",
        "6789",
        ROUTING,
    )
    before = pending_balance(client, "usd")
    pi = debit(client, pm, 5000)
    assert (pi.status, pi.payment_method_types, pi.amount_received) == (
        "processing",
        ["us_bank_account"],
        0,
    )
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.paid, charge.captured) == ("pending", False, False)
    details = charge.payment_method_details
    assert details.type == "us_bank_account"
    assert (details.us_bank_account.last4, details.us_bank_account.routing_number) == (
        "6789",
        ROUTING,
    )
    assert details.us_bank_account.fingerprint == pm.us_bank_account.fingerprint
    assert charge.routing["connector"] == "bank"
    assert pending_balance(client, "usd") == before  # nothing booked while on the rail

    advance(sandbox, 3 * DAY + 1)
    await until_stored(db, "bank", charge.id)
    assert await psp_events.process_inbox(payments) >= 1
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 5000)
    charge = client.v1.charges.retrieve(charge.id)
    assert (charge.status, charge.captured, charge.amount_captured) == ("succeeded", True, 5000)
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net, txn.type) == (5000, 175, 4825, "charge")
    assert pending_balance(client, "usd") == before + 4825
    assert event_types_for(client, pi.id) == [
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.succeeded",
    ]
    assert event_types_for(client, charge.id) == ["charge.pending", "charge.succeeded"]
    [row] = await inbox_rows(db, "bank", charge.id)
    assert row["outcome"] == "debit captured (succeeded)"
    # A duplicate delivery changes nothing.
    assert await psp_events.process_inbox(payments) == 0
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def test_ach_debit_returned_insufficient_funds(client, db, bank, sandbox, payments):
    before = pending_balance(client, "usd")
    pi = debit(client, ach(client, R01), 2500)
    assert pi.status == "processing"
    advance(sandbox, 3 * DAY + 1)
    await until_stored(db, "bank", pi.latest_charge)
    await psp_events.process_inbox(payments)
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "insufficient_funds"
    assert failed.amount_received == 0
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.failure_code, charge.balance_transaction) == (
        "failed",
        "insufficient_funds",
        None,
    )
    assert pending_balance(client, "usd") == before
    assert event_types_for(client, pi.id)[-1] == "payment_intent.payment_failed"
    assert event_types_for(client, charge.id) == ["charge.pending", "charge.failed"]
    # The customer can pay again with another account: a new attempt, settled this time.
    again = client.v1.payment_intents.confirm(pi.id, {"payment_method": ach(client, SETTLES).id})
    assert again.status == "processing"
    assert again.latest_charge != charge.id


async def test_late_return_after_settlement_reverses_the_money(
    client, db, bank, sandbox, payments, merchant
):
    before = pending_balance(client, "usd")
    pi = debit(client, ach(client, LATE_R10), 4000)
    advance(sandbox, 3 * DAY + 1)
    await until_stored(db, "bank", pi.latest_charge)
    await psp_events.process_inbox(payments)
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert pending_balance(client, "usd") == before + 4000 - 146
    advance(sandbox, 5 * DAY + 1)
    await until_stored(db, "bank", pi.latest_charge, 2)
    await psp_events.process_inbox(payments)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.status, charge.failure_code) == ("failed", "debit_not_authorized")
    # The fee is kept; the amount goes back to the bank.
    assert pending_balance(client, "usd") == before - 146
    txns = client.v1.balance_transactions.list({"source": charge.id}).data
    assert sorted((t.type, t.amount) for t in txns) == [
        ("charge", 4000),
        ("payment_failure_refund", -4000),
    ]
    assert event_types_for(client, charge.id)[-1] == "charge.failed"
    # The intent's succeeded status is terminal; the charge says what happened.
    assert client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
    assert (await ledger.verify(db, merchant.merchant["id"])).ok


async def test_sepa_debit_resolved_by_inquiry_without_notifications(
    client, db, sandbox, payments, merchant
):
    """No notification ever arrives (none is configured): the status inquiry finds out."""
    pm = sepa(client, IBAN_SETTLES)
    assert (pm.sepa_debit.last4, pm.sepa_debit.bank_code, pm.sepa_debit.country) == (
        "3000",
        "37040044",
        "DE",
    )
    pi = debit(client, pm, 1999, "eur")
    assert pi.status == "processing"
    m = merchant.merchant["id"]
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "processing"
    advance(sandbox, 3 * DAY + 1)
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 1999)
    # Asking again changes nothing.
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    assert len(client.v1.balance_transactions.list({"source": pi.latest_charge}).data) == 1


async def test_sepa_debit_returned_by_inquiry(client, sandbox, payments, merchant):
    pi = debit(client, sepa(client, IBAN_AM04), 700, "eur")
    advance(sandbox, 3 * DAY + 1)
    m = merchant.merchant["id"]
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "returned"
    failed = client.v1.payment_intents.retrieve(pi.id)
    assert (failed.status, failed.last_payment_error.code) == (
        "requires_payment_method",
        "insufficient_funds",
    )


def test_forged_bank_notification_is_refused(api_url):
    body = b'{"id": "evt_forged", "type": "debit.settled", "data": {"reference": "ch_x"}}'
    answer = httpx.post(
        f"{api_url}/psp/bank/webhooks",
        content=body,
        headers={"content-type": "application/json", "cindral-signature": "t=1,v1=00"},
    )
    assert answer.status_code == 401


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (
            {"us_bank_account": {"routing_number": "110000001", "account_number": SETTLES}},
            "us_bank_account[routing_number]",
        ),
        (
            {"us_bank_account": {"routing_number": ROUTING, "account_number": "12ab"}},
            "us_bank_account[account_number]",
        ),
        ({"us_bank_account": {"routing_number": ROUTING}}, "us_bank_account[account_number]"),
        ({}, "us_bank_account"),
    ],
)
def test_bad_us_bank_accounts_are_400s_naming_the_param(client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(
            {"type": "us_bank_account", "billing_details": {"name": "J"}, **params}
        )
    assert (err.value.http_status, err.value.param) == (400, param)
    assert SETTLES not in str(err.value.json_body)
    assert client.v1.payment_methods.list({"type": "us_bank_account"}).data == []


def test_bad_sepa_input_changes_nothing(client):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013001"},
             "billing_details": {"name": "J"}}
        )  # fmt: skip
    assert (err.value.code, err.value.param) == ("invalid_bank_account_iban", "sepa_debit[iban]")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_methods.create(
            {"type": "sepa_debit", "sepa_debit": {"iban": IBAN_SETTLES}}
        )
    assert err.value.param == "billing_details[name]"
    assert client.v1.payment_methods.list({"type": "sepa_debit"}).data == []
    # A SEPA debit in dollars: refused before anything is created.
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(
            {"amount": 1000, "currency": "usd", "payment_method_types": ["sepa_debit"]}
        )
    assert err.value.param == "currency"
    assert client.v1.payment_intents.list().data == []
    pm = sepa(client, IBAN_SETTLES)
    pi = client.v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method_types": ["card"]}
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": pm.id})
    assert err.value.param == "payment_method"
    assert client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


async def test_account_numbers_are_sealed(client, db):
    pm = ach(client, SETTLES)
    iban_pm = sepa(client, IBAN_SETTLES)
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT row_to_json(p)::text AS t, pan FROM payment_methods p WHERE id = ANY($1)",
            [pm.id, iban_pm.id],
        )
    assert len(rows) == 2
    for row in rows:
        assert SETTLES not in row["t"]
        assert IBAN_SETTLES not in row["t"]
        assert SETTLES.encode() not in bytes(row["pan"])
        assert IBAN_SETTLES.encode() not in bytes(row["pan"])
    shown = client.v1.payment_methods.retrieve(pm.id)
    assert SETTLES not in str(shown)


@contextmanager
def bank_faults(sandbox, faults: dict):
    """Inject ``faults`` at the sandbox bank meanwhile; always cleared afterwards."""
    url = sandbox["services"]["bank"]["base_url"]
    httpx.post(f"{url}/admin/faults", json=faults).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{url}/admin/faults").raise_for_status()


async def test_rate_limited_inquiry_is_no_verdict(client, sandbox, payments, merchant):
    """A 429 on the daily inquiry of a processing debit is no answer from the bank: the debit
    stays processing, and the next inquiry books the settlement."""
    before = pending_balance(client, "usd")
    pi = debit(client, ach(client, SETTLES), 3100)
    assert pi.status == "processing"
    m = merchant.merchant["id"]
    with bank_faults(sandbox, {"error_rates": {"429": 1.0}}):
        assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "processing"
        advance(sandbox, 3 * DAY + 1)  # settled at the bank meanwhile
        assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "processing"
    still = client.v1.payment_intents.retrieve(pi.id)
    assert (still.status, still.last_payment_error) == ("processing", None)
    assert client.v1.charges.retrieve(pi.latest_charge).status == "pending"
    assert await async_methods.resolve(payments, m, False, pi.latest_charge) == "captured"
    done = client.v1.payment_intents.retrieve(pi.id)
    assert (done.status, done.amount_received) == ("succeeded", 3100)
    txn = client.v1.balance_transactions.retrieve(
        client.v1.charges.retrieve(pi.latest_charge).balance_transaction
    )
    assert pending_balance(client, "usd") == before + txn.net
    assert txn.amount == 3100


@pytest.mark.parametrize("kind", ["us_bank_account", "sepa_debit"])
def test_manual_capture_of_a_debit_is_refused(client, sandbox, kind):
    """Bank debits are collected when the rail settles them: ``capture_method=manual`` is a
    400 naming it, at create-and-confirm and at confirm, and nothing is attempted."""
    pm = ach(client, SETTLES) if kind == "us_bank_account" else sepa(client, IBAN_SETTLES)
    currency = "usd" if kind == "us_bank_account" else "eur"
    params = {"amount": 1500, "currency": currency, "payment_method_types": [kind]}
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create(
            {**params, "payment_method": pm.id, "capture_method": "manual", "confirm": True}
        )
    assert (err.value.http_status, err.value.param) == (400, "capture_method")
    assert client.v1.payment_intents.list().data == []
    pi = client.v1.payment_intents.create({**params, "capture_method": "manual"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.confirm(pi.id, {"payment_method": pm.id})
    assert (err.value.http_status, err.value.param) == (400, "capture_method")
    after = client.v1.payment_intents.retrieve(pi.id)
    assert (after.status, after.latest_charge) == ("requires_payment_method", None)
    # With automatic capture it goes through.
    ok = client.v1.payment_intents.confirm(
        pi.id, {"payment_method": pm.id, "capture_method": "automatic"}
    )
    assert ok.status == "processing"
