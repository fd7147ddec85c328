"""Bank debits (``us_bank_account``, ``sepa_debit``) through the bank's ``MethodConnector``:
what differs from the other asynchronous methods (``method_attempts``).

A debit answers ``processing``; the intent stays ``processing`` until the bank's notification
(or an inquiry) says it settled (``succeeded``, money booked) or was returned
(``requires_payment_method``, nothing booked). A return after settling takes the money back
with reversing transfers. A refund is a credit transfer back to the debited account
(``send_refund``), confirmed by the bank's notification or a daily inquiry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from kassa.connectors.base import (
    BankAccount,
    EventKind,
    MethodOutcome,
    MethodResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
)
from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest, KassaError
from kassa.payments import repository
from kassa.payments.schemas import charge_object
from kassa.payments.service import money
from kassa.payments.service.context import Origin, Payments, emit
from kassa.vault import service as vault

DEBIT_TYPES = frozenset({"us_bank_account", "sepa_debit"})
# Stripe's currencies for bank debits; the other types are limited by their provider.
DEBIT_CURRENCY = {"us_bank_account": "usd", "sepa_debit": "eur"}
# A debit takes days on the rail: ask the bank daily if no notification came.
INQUIRY_EVERY = timedelta(days=1)
# A refund's credit transfer takes a day: ask the bank daily if no notification came.
REFUND_INQUIRY_EVERY = timedelta(days=1)
# The bank's notifications, applied as they say.
EVENT_KINDS = frozenset({EventKind.DEBIT_SETTLED, EventKind.DEBIT_RETURNED})

FAILURE_MESSAGES = {
    "insufficient_funds": "The customer's bank account has insufficient funds.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "invalid_account_number": "The customer's bank account number is invalid.",
    "debit_not_authorized": "The customer notified their bank that this debit was unauthorized.",
    "routing_number_invalid": "The routing number is invalid.",
    "account_number_invalid": "The bank account number is invalid.",
    "invalid_bank_account_iban": "The IBAN is invalid.",
}


def check_types(types: Sequence[str] | None, currency: str) -> None:
    """Refuse ``payment_method_types`` a currency excludes (bank debits are single-currency)."""
    for t in types or ():
        wanted = DEBIT_CURRENCY.get(t)
        if wanted is not None and currency.lower() != wanted:
            raise InvalidRequest(
                f"The currency provided ({currency.lower()}) is invalid for payments with "
                f"{t}; it only supports {wanted}.",
                param="currency",
            )


async def bank_account(
    p: Payments, origin: Origin, payment_method_id: str, *, for_refund: bool = False
) -> BankAccount:
    """The account to debit (or, ``for_refund``, to credit back: allowed even after the
    payment method was detached); it leaves the vault for the provider request only."""
    read = vault.bank_account_for_refund if for_refund else vault.bank_account_for_debit
    opened = await read(p.db, origin.merchant_id, origin.livemode, payment_method_id)
    return BankAccount(
        opened.rail,
        opened.account_number,
        opened.routing_number,
        opened.iban,
        opened.holder_name,
    )


def is_debit(charge: Record) -> bool:
    """True for a bank debit's charge (refunded by credit transfer, not by the PSP)."""
    return (charge["payment_method_details"] or {}).get("type") in DEBIT_TYPES


@runtime_checkable
class CreditConnector(Protocol):
    """A bank that sends money to an account (``BankConnector``)."""

    async def credit(
        self,
        request: ModificationRequest,
        account: BankAccount,
        payment_method_type: str,
        description: str | None = None,
    ) -> ModificationResult: ...

    async def credit_status(self, reference: str) -> ModificationResult | None: ...


def _bank(p: Payments, charge: Record) -> CreditConnector | None:
    connector = p.connectors.get(charge["connector"])
    return connector if isinstance(connector, CreditConnector) else None


async def send_refund(
    p: Payments, origin: Origin, charge: Record, refund_id: str, amount: int
) -> ModificationResult:
    """Refund (part of) a settled debit: a credit transfer of ``amount`` to the account the
    debit came from, under the refund id (a resend gets the bank's first answer). The account
    number leaves the vault for this request only. Raises ``OutcomeUnknown`` when the bank's
    answer was lost."""
    bank = _bank(p, charge)
    if bank is None:
        return ModificationResult(
            ModificationOutcome.FAILED, None, f"Connector {charge['connector']} sends no credits."
        )
    try:
        account = await bank_account(p, origin, charge["payment_method_id"], for_refund=True)
    except KassaError as exc:  # the payment method is gone: no account to send to
        return ModificationResult(ModificationOutcome.FAILED, None, exc.message)
    return await bank.credit(
        ModificationRequest(
            reference=refund_id,
            psp_reference=charge["psp_reference"] or "",
            amount=amount,
            currency=charge["currency"],
        ),
        account,
        charge["payment_method_details"]["type"],
        f"REFUND {charge['id']}",
    )


async def refund_status(p: Payments, charge: Record, refund_id: str) -> ModificationResult | None:
    """What the bank says of a refund's credit transfer (None: it holds none)."""
    bank = _bank(p, charge)
    return await bank.credit_status(refund_id) if bank is not None else None


def event_result(kind: str, event: dict[str, Any]) -> MethodResult:
    """The verdict a bank's notification (a debit settled or returned) carries."""
    if kind == EventKind.DEBIT_SETTLED:
        return MethodResult(MethodOutcome.CAPTURED, event.get("psp_reference"))
    return MethodResult(
        MethodOutcome.RETURNED, event.get("psp_reference"), failure_code=event.get("reason")
    )


async def late_return(
    conn: Connection, origin: Origin, charge: Record, code: str, message: str | None
) -> Record:
    """A debit returned after it settled (an unauthorised-debit claim, a SEPA refund
    request): the bank took the money back, so the merchant's balance gives it back with
    reversing transfers (merchant pending → bank clearing; the fee is kept), reported as a
    ``payment_failure_refund`` balance transaction, and the charge fails with ``code``. The
    intent stays ``succeeded`` (a terminal state); the charge and the events tell what
    happened.

    The bank takes back the whole debit, whatever was refunded: the reversal is the full
    ``amount_captured``, so the clearing account follows the bank (debit in, refund credits
    out, the whole debit back). Refunds already booked stay booked — their credit transfers
    are the bank's own movements, confirmed or failed (and then reversed) as usual — so the
    merchant bears a refund the customer also got back through the return."""
    if charge["outcome"] == "returned":
        return charge
    m, lm = origin.merchant_id, origin.livemode
    amount = charge["amount_captured"]
    if amount > 0:
        await money.record_return(
            conn,
            merchant_id=m,
            livemode=lm,
            charge_id=charge["id"],
            connector=charge["connector"],
            amount=amount,
            currency=charge["currency"],
            now=clock.now(),
        )
    charge = await repository.update(
        conn,
        "charges",
        m,
        charge["id"],
        {
            "status": "failed",
            "outcome": "returned",
            "failure_code": code,
            "failure_message": message,
        },
    )
    await emit(conn, origin, "charge.failed", charge_object(charge))
    return charge
