"""Background jobs of the payments domain: finishing attempts whose outcome is unknown, and
captures, cancels and expiries a dead process left unfinished."""

from __future__ import annotations

import logging
from datetime import timedelta

import procrastinate

from kassa.core import clock
from kassa.core.db import Record
from kassa.payments import repository
from kassa.payments.service import (
    async_methods,
    attempts,
    expiry,
    operations,
    psp_events,
    refunds,
)
from kassa.payments.service.context import Payments

blueprint = procrastinate.Blueprint()
log = logging.getLogger(__name__)


@blueprint.task(name="resolve_charge", pass_context=True)
async def resolve_charge(
    context: procrastinate.JobContext, merchant_id: str, livemode: bool, charge_id: str
) -> str:
    """Ask the PSP what became of an attempt whose answer was lost."""
    payments: Payments = context.additional_context["payments"]
    return await attempts.resolve_charge(payments, merchant_id, livemode, charge_id)


@blueprint.periodic(cron="* * * * *", periodic_id="minutely")
@blueprint.task(name="sweep_unresolved", pass_context=True, queueing_lock="sweep-unresolved")
async def sweep_unresolved(context: procrastinate.JobContext, timestamp: int) -> int:
    """Find attempts left ``pending`` by a process that died between the saga's two
    transactions (no job was deferred for them) and resolve them; and captures, cancels and
    expiries a dead process left unfinished (``recover_operations``)."""
    payments: Payments = context.additional_context["payments"]
    return await recover_abandoned(payments) + await recover_operations(payments)


# Longer than any authorisation can be in flight (timeouts, retries, cascades), so the sweep
# never asks about a call still running: a PSP that has not yet recorded it says NOT_FOUND.
ABANDONED_AFTER = timedelta(minutes=2)


async def recover_abandoned(
    payments: Payments, age: timedelta = ABANDONED_AFTER, limit: int = 500
) -> int:
    """Resolve attempts nobody will resolve otherwise: those a killed process left with no
    recorded outcome (older than ``age``), and unknown outcomes whose inquiry job was lost
    (past the whole schedule, yet not flagged). Scheduled inquiries are left to their jobs,
    so the backoff holds. Returns how many were asked."""
    now = clock.now()
    lost = now - sum(attempts.INQUIRY_BACKOFF, timedelta()) - timedelta(hours=1)
    async with payments.db.connection() as conn:
        rows = await repository.unanswered_charges(conn, now - age, lost, limit)
    for row in rows:
        await resolve_attempt(payments, row)
    return len(rows)


async def resolve_attempt(payments: Payments, row: Record) -> str:
    """Finish one attempt by asking its provider, on the path its payment method takes (a
    card's status inquiry, or a bank debit's, wallet's or BNPL's own). A failure is logged and
    left for the next sweep: one bad attempt must not stop the others being recovered."""
    m, lm, charge_id = row["merchant_id"], row["livemode"], row["id"]
    try:
        if async_methods.is_async({"type": row["type"]}):
            return await async_methods.resolve(payments, m, lm, charge_id)
        return await attempts.resolve_charge(payments, m, lm, charge_id)
    except Exception:
        log.exception("charge %s: resolving it failed; the next sweep tries again", charge_id)
        return "error"


async def recover_operations(
    payments: Payments, age: timedelta = operations.STALE_AFTER, limit: int = 500
) -> int:
    """Finish or release the captures, cancels and expiries that started more than ``age``
    ago and never recorded an outcome (the process died during the PSP call), each from what
    its PSP holds (``operations.recover_operation``). Returns how many were looked at."""
    async with payments.db.connection() as conn:
        rows = await repository.busy_intents(conn, operations.RECOVERABLE, clock.now() - age, limit)
    for row in rows:
        await resolve_operation(payments, row, age)
    return len(rows)


async def resolve_operation(payments: Payments, row: Record, age: timedelta) -> str:
    """Recover one intent's unfinished operation; a failure is logged and left for the next
    sweep, so one bad intent does not stop the others being recovered."""
    m, lm, intent_id = row["merchant_id"], row["livemode"], row["id"]
    try:
        return await operations.recover_operation(payments, m, lm, intent_id, age)
    except Exception:
        log.exception(
            "intent %s: recovering its %s failed; the next sweep tries again",
            intent_id,
            row["operation"],
        )
        return "error"


async def resolve_stale(payments: Payments, age: timedelta = timedelta(minutes=2)) -> int:
    """Ask the PSP now about every attempt pending for longer than ``age``, whatever its
    schedule (tests and operators: ``kassa payments resolve``); returns how many were asked."""
    async with payments.db.connection() as conn:
        rows = await repository.unresolved_charges(conn, clock.now() - age, 500)
    for row in rows:
        await resolve_attempt(payments, row)
    return len(rows)


@blueprint.periodic(cron="7 * * * *", periodic_id="hourly")
@blueprint.task(
    name="expire_authorizations", pass_context=True, queueing_lock="expire-authorizations"
)
async def expire_authorizations(context: procrastinate.JobContext, timestamp: int) -> int:
    """Void and cancel authorisations left uncaptured for seven days."""
    payments: Payments = context.additional_context["payments"]
    return await expiry.expire_authorizations(payments)


@blueprint.task(name="release_remainder", pass_context=True)
async def release_remainder(
    context: procrastinate.JobContext,
    merchant_id: str,
    livemode: bool,
    charge_id: str,
    attempt: int,
) -> str:
    """Void the uncaptured remainder of a final partial capture at a PSP that keeps it."""
    payments: Payments = context.additional_context["payments"]
    return await expiry.release_remainder(payments, merchant_id, livemode, charge_id, attempt)


@blueprint.task(name="process_psp_events", pass_context=True, queueing_lock="psp-inbox-run")
async def process_psp_events(context: procrastinate.JobContext) -> int:
    """Apply stored PSP notifications."""
    payments: Payments = context.additional_context["payments"]
    return await psp_events.process_inbox(payments)


@blueprint.periodic(cron="* * * * *", periodic_id="inbox-sweep")
@blueprint.task(name="sweep_psp_inbox", pass_context=True, queueing_lock="psp-inbox-sweep")
async def sweep_psp_inbox(context: procrastinate.JobContext, timestamp: int) -> int:
    """Apply notifications whose processing job was lost or failed."""
    payments: Payments = context.additional_context["payments"]
    return await psp_events.process_inbox(payments)


@blueprint.task(name="resend_refund", pass_context=True)
async def resend_refund(
    context: procrastinate.JobContext,
    merchant_id: str,
    livemode: bool,
    refund_id: str,
    attempt: int,
) -> str:
    """Send a refund whose answer was lost again, under the same reference."""
    payments: Payments = context.additional_context["payments"]
    return await refunds.resend_refund(payments, merchant_id, livemode, refund_id, attempt)


@blueprint.task(name="resolve_async_payment", pass_context=True)
async def resolve_async_payment(
    context: procrastinate.JobContext, merchant_id: str, livemode: bool, charge_id: str
) -> str:
    """Learn a bank debit's, wallet's or BNPL payment's outcome from its provider (the
    fallback to notifications, and what a shopper's decision notified by webhook runs)."""
    payments: Payments = context.additional_context["payments"]
    return await async_methods.resolve(payments, merchant_id, livemode, charge_id)


@blueprint.task(name="inquire_bank_refund", pass_context=True)
async def inquire_bank_refund(
    context: procrastinate.JobContext,
    merchant_id: str,
    livemode: bool,
    refund_id: str,
    attempt: int,
) -> str:
    """Ask the bank whether a debit's refund (a credit transfer) arrived or came back (the
    fallback to its notification)."""
    payments: Payments = context.additional_context["payments"]
    return await refunds.inquire_bank_refund(payments, merchant_id, livemode, refund_id, attempt)
