"""A refund's outcome, committed once from whichever source learns it first: the PSP's
answer to the refund request, a resend after a lost answer, a notification or an inquiry.
Every function runs in the caller's transaction."""

from __future__ import annotations

from kassa.connectors.base import ModificationOutcome
from kassa.core import clock, jobs
from kassa.core.db import Connection, Record
from kassa.payments import repository
from kassa.payments.schemas import charge_object, refund_object
from kassa.payments.service import bank_debits, money
from kassa.payments.service.context import Origin, emit, emit_all

INQUIRY_JOB = "payments:inquire_bank_refund"


async def settle_refund(
    conn: Connection,
    origin: Origin,
    refund_id: str,
    outcome: ModificationOutcome,
    psp_reference: str | None,
    message: str | None,
) -> Record:
    """Commit the PSP's decision on a refund nothing was booked for yet: accepted or
    succeeded, the money goes back to the customer (merchant pending → PSP clearing, fees
    kept as the plan says) and the charge's refunded amount grows; failed, the reserved
    amount is released and nothing moves. Returns the refund row."""
    m, lm = origin.merchant_id, origin.livemode
    now = clock.now()
    refund = await repository.get(conn, "refunds", m, lm, refund_id, for_update=True)
    assert refund is not None
    if refund["outcome"] != "pending":
        return refund  # decided already (a resend, a retry or a notification got there first)
    charge = await repository.get(conn, "charges", m, lm, refund["charge_id"], for_update=True)
    assert charge is not None
    reserved = charge["amount_refunding"] - refund["amount"]
    if outcome is ModificationOutcome.FAILED:
        refund = await repository.update(
            conn,
            "refunds",
            m,
            refund_id,
            {
                "status": "failed",
                "outcome": "failed",
                "psp_reference": psp_reference,
                "failure_reason": message or "unknown",
            },
        )
        await repository.update(conn, "charges", m, charge["id"], {"amount_refunding": reserved})
        await emit(conn, origin, "refund.failed", refund_object(refund))
    else:
        txn = await money.record_refund(
            conn,
            merchant_id=m,
            livemode=lm,
            refund_id=refund_id,
            charge_id=charge["id"],
            connector=charge["connector"],
            amount=refund["amount"],
            currency=refund["currency"],
            charge_fee=charge["fee"],
            charge_amount=charge["amount_captured"],
            now=now,
        )
        # A PSP that confirms refunds later (by webhook) leaves the refund pending; the
        # money is booked now because it is committed to go back.
        status = "succeeded" if outcome is ModificationOutcome.SUCCEEDED else "pending"
        refund = await repository.update(
            conn,
            "refunds",
            m,
            refund_id,
            {
                "status": status,
                # "accepted": the PSP took it and confirms later; "pending" would read
                # as "no answer yet" and let a resend finish it twice.
                "outcome": (
                    "accepted" if outcome is ModificationOutcome.PENDING else outcome.value
                ),
                "psp_reference": psp_reference,
                "balance_transaction": txn,
            },
        )
        charge = await repository.update(
            conn,
            "charges",
            m,
            charge["id"],
            {
                "amount_refunding": reserved,
                "amount_refunded": charge["amount_refunded"] + refund["amount"],
            },
        )
        await emit_all(
            conn,
            origin,
            [
                ("refund.created", refund_object(refund)),
                ("charge.refunded", charge_object(charge)),
            ],
        )
        if status == "pending" and bank_debits.is_debit(charge):
            # The fallback to the bank's notification of the credit's arrival or return.
            await schedule_inquiry(conn, m, lm, refund_id, 0)
    return refund


async def schedule_inquiry(
    conn: Connection, merchant_id: str, livemode: bool, refund_id: str, attempt: int
) -> None:
    """Ask the bank about a debit's refund again after ``REFUND_INQUIRY_EVERY``."""
    await jobs.defer(
        conn,
        INQUIRY_JOB,
        {
            "merchant_id": merchant_id,
            "livemode": livemode,
            "refund_id": refund_id,
            "attempt": attempt + 1,
        },
        scheduled_at=clock.now() + bank_debits.REFUND_INQUIRY_EVERY,
        queueing_lock=f"bank-refund:{refund_id}:{attempt}",
    )


async def refund_outcome(
    conn: Connection, origin: Origin, refund_id: str, success: bool, reason: str | None
) -> str:
    """The PSP's (or a bank's) verdict on a booked refund, from a notification or an inquiry:
    a ``pending`` refund ``succeeded``, or ``failed`` and reversed. Repeats change nothing."""
    refund = await repository.get(
        conn, "refunds", origin.merchant_id, origin.livemode, refund_id, for_update=True
    )
    assert refund is not None
    if refund["outcome"] == "pending":
        # The answer to the refund request was lost, so nothing is booked yet: the verdict
        # settles it as that answer would have (booked and succeeded, or released and failed).
        verdict = ModificationOutcome.SUCCEEDED if success else ModificationOutcome.FAILED
        refund = await settle_refund(conn, origin, refund_id, verdict, None, reason)
        return f"refund {refund['status']} (its answer was lost)"
    if success:
        if refund["status"] != "pending":
            return f"no change ({refund['status']})"
        refund = await repository.update(
            conn,
            "refunds",
            origin.merchant_id,
            refund["id"],
            {"status": "succeeded", "outcome": "succeeded"},
        )
        await emit(conn, origin, "charge.refund.updated", refund_object(refund))
        return "refund succeeded"
    if refund["status"] == "failed":
        return "no change (failed)"
    return await _refund_failed(conn, origin, refund, reason)


async def _refund_failed(
    conn: Connection, origin: Origin, refund: Record, reason: str | None
) -> str:
    """The PSP refused a refund we had booked: the money comes back to the merchant's balance
    by reversing transfers (never by editing the ledger)."""
    m, lm = origin.merchant_id, origin.livemode
    charge = await repository.get(conn, "charges", m, lm, refund["charge_id"], for_update=True)
    assert charge is not None
    txn = await repository.get(conn, "balance_transactions", m, lm, refund["balance_transaction"])
    await money.record_refund_reversal(
        conn,
        merchant_id=m,
        livemode=lm,
        refund_id=refund["id"],
        connector=charge["connector"],
        amount=refund["amount"],
        currency=refund["currency"],
        fee_back=-txn["fee"] if txn else 0,
        now=clock.now(),
    )
    refund = await repository.update(
        conn,
        "refunds",
        m,
        refund["id"],
        {"status": "failed", "outcome": "failed", "failure_reason": reason or "declined"},
    )
    charge = await repository.update(
        conn,
        "charges",
        m,
        charge["id"],
        {"amount_refunded": charge["amount_refunded"] - refund["amount"]},
    )
    await emit_all(
        conn,
        origin,
        [
            ("charge.refund.updated", refund_object(refund)),
            ("charge.refunded", charge_object(charge)),
        ],
    )
    return "refund failed: reversed"
