"""The bank, wallet and BNPL connectors against the live sandbox: idempotent starts, inquiries
by our reference, the providers' own errors as declines, and notification verification
(signature, staleness, tampering)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import orjson
import pytest

from kassa.connectors.bank import BankConnector
from kassa.connectors.base import (
    BankAccount,
    EventKind,
    InvalidNotification,
    MethodConnector,
    MethodOutcome,
    MethodRequest,
    ModificationOutcome,
    ModificationRequest,
    Rejected,
)
from kassa.connectors.bnpl import BnplConnector
from kassa.connectors.configuration import configs_from_sandbox_manifest, sandbox_configuration
from kassa.connectors.wallet import WalletConnector


def _config(sandbox: dict[str, Any], kind: str) -> Any:
    [config] = [c for c in configs_from_sandbox_manifest(sandbox) if c.kind == kind]
    return config


def _signed(secret: str, body: bytes, t: int) -> str:
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_sandbox_configuration_keeps_method_providers_out_of_card_routing(sandbox):
    configuration = sandbox_configuration(sandbox)
    kinds = {c.name: c.kind for c in configuration.connectors}
    assert {"bank", "wallet", "bnpl"} <= set(kinds.values())
    routed = {r.connector for r in configuration.routing.rules}
    assert routed == {"acquirer_a", "acquirer_b"}


async def test_bank_debit_start_is_idempotent_and_inquired(sandbox):
    bank = BankConnector(_config(sandbox, "bank"))
    assert isinstance(bank, MethodConnector)
    reference = f"ch_test_{uuid.uuid4().hex[:12]}"
    request = MethodRequest(
        reference,
        2500,
        "usd",
        "us_bank_account",
        bank_account=BankAccount("ach", "000123456789", "110000000", None, "J"),
    )
    try:
        first = await bank.start(request)
        again = await bank.start(request)
        assert first.outcome is MethodOutcome.PROCESSING
        assert again.psp_reference == first.psp_reference  # the same debit, not a second one
        asked = await bank.inquire(reference)
        assert (asked.outcome, asked.psp_reference) == (
            MethodOutcome.PROCESSING,
            first.psp_reference,
        )
        assert (await bank.inquire(f"{reference}-none")).outcome is MethodOutcome.NOT_FOUND
        refund = await bank.refund(ModificationRequest("re_x", first.psp_reference or "", 1, "usd"))
        assert refund.outcome is ModificationOutcome.FAILED
        with pytest.raises(Rejected):
            await bank.start(
                MethodRequest(
                    reference + "e",
                    100,
                    "eur",
                    "us_bank_account",
                    bank_account=BankAccount("ach", "000123456789", "110000000", None, "J"),
                )
            )
    finally:
        await bank.close()


async def test_wallet_and_bnpl_start_with_a_page(sandbox):
    wallet = WalletConnector(_config(sandbox, "wallet"))
    bnpl = BnplConnector(_config(sandbox, "bnpl"))
    reference = f"ch_test_{uuid.uuid4().hex[:12]}"
    back = "https://kassa.example/payments/redirect/x/return"
    try:
        order = await wallet.start(
            MethodRequest(reference, 1050, "jpy", "paypal", return_url=back, cancel_url=back)
        )
        assert order.outcome is MethodOutcome.REQUIRES_ACTION
        assert order.redirect_url
        assert "/checkout/" in order.redirect_url
        assert (await wallet.inquire(reference)).psp_reference == order.psp_reference
        checkout = await bnpl.start(
            MethodRequest(
                reference, 5000, "sek", "klarna", return_url=back, cancel_url=back, email="a@b.c"
            )
        )
        assert checkout.outcome is MethodOutcome.REQUIRES_ACTION
        assert checkout.redirect_url
        assert "/pay/" in checkout.redirect_url
        with pytest.raises(Rejected):
            await bnpl.start(MethodRequest(reference + "x", 5000, "sek", "klarna"))
    finally:
        await wallet.close()
        await bnpl.close()


def test_bank_notifications_are_verified(sandbox):
    config = _config(sandbox, "bank")
    bank = BankConnector(config)
    event = {
        "id": "evt_1",
        "type": "debit.returned",
        "created": int(time.time()),
        "data": {
            "id": "dd_1",
            "reference": "ch_1",
            "amount": 100,
            "currency": "USD",
            "status": "returned",
            "return_code": "R01",
            "returned_after_settlement": False,
        },
    }
    body = orjson.dumps(event)
    now = int(time.time())
    batch = bank.parse_webhook(
        body, {"Cindral-Signature": _signed(config.webhook_secret, body, now)}
    )
    [parsed] = batch.events
    assert (parsed.kind, parsed.reference, parsed.reason, parsed.success) == (
        EventKind.DEBIT_RETURNED,
        "ch_1",
        "insufficient_funds",
        False,
    )
    # Ahead of our clock (the sandbox's world clock after an advance): accepted.
    ahead = bank.parse_webhook(
        body, {"cindral-signature": _signed(config.webhook_secret, body, now + 8 * 86_400)}
    )
    assert len(ahead.events) == 1
    for headers in (
        {},
        {"cindral-signature": _signed(config.webhook_secret, body, now - 3600)},  # stale
        {"cindral-signature": _signed("wrong", body, now)},
        {"cindral-signature": _signed(config.webhook_secret, body + b" ", now)[:-1] + "0"},
    ):
        with pytest.raises(InvalidNotification):
            bank.parse_webhook(body, headers)
    payout = orjson.dumps({"id": "evt_2", "type": "payout.paid", "data": {}})
    skipped = bank.parse_webhook(
        payout, {"cindral-signature": _signed(config.webhook_secret, payout, now)}
    )
    assert skipped.events == ()


async def test_bank_credit_is_idempotent_and_inquired(sandbox):
    """A debit's refund is a credit transfer (payout) to the account under the refund id."""
    bank = BankConnector(_config(sandbox, "bank"))
    reference = f"re_test_{uuid.uuid4().hex[:12]}"
    account = BankAccount("sepa", None, None, "DE89370400440532013000", "J")
    request = ModificationRequest(reference, "dd_x", 700, "eur")
    try:
        first = await bank.credit(request, account, "sepa_debit", "REFUND ch_x")
        again = await bank.credit(request, account, "sepa_debit", "REFUND ch_x")
        assert first.outcome is ModificationOutcome.PENDING
        assert again.psp_reference == first.psp_reference  # one credit, not two
        status = await bank.credit_status(reference)
        assert status is not None
        assert (status.outcome, status.psp_reference) == (
            ModificationOutcome.PENDING,
            first.psp_reference,
        )
        assert await bank.credit_status(f"{reference}-none") is None
        with pytest.raises(Rejected):  # an ACH account cannot take a SEPA credit
            await bank.credit(
                ModificationRequest(reference + "a", "dd_x", 700, "eur"),
                BankAccount("ach", "000123456789", "110000000", None, "J"),
                "sepa_debit",
            )
    finally:
        await bank.close()


def test_bank_credit_notifications_are_refund_events(sandbox):
    config = _config(sandbox, "bank")
    bank = BankConnector(config)
    now = int(time.time())

    def parse(event_type: str, reference: str, **extra: Any) -> Any:
        data = {"id": "po_1", "reference": reference, "amount": 700, "currency": "EUR", **extra}
        body = orjson.dumps({"id": "evt_p", "type": event_type, "created": now, "data": data})
        return bank.parse_webhook(
            body, {"cindral-signature": _signed(config.webhook_secret, body, now)}
        ).events

    [paid] = parse("payout.paid", "re_1", status="paid")
    assert (paid.kind, paid.success, paid.operation_reference, paid.psp_reference) == (
        EventKind.REFUND,
        True,
        "re_1",
        "po_1",
    )
    [failed] = parse("payout.failed", "re_2", status="failed", failure_code="account_closed")
    assert (failed.kind, failed.success, failed.reason) == (
        EventKind.REFUND,
        False,
        "account_closed",
    )
    assert parse("payout.paid", "po_merchant_1", status="paid") == ()  # not a refund's
