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
