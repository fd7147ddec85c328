"""What a capture or a refund does to money: the fee, the ledger transfers (one journal entry
per business event) and the Stripe ``balance_transaction`` that reports them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kassa.core.db import Connection, Database
from kassa.core.errors import InvalidRequest
from kassa.core.ids import new_id
from kassa.core.money import currency as parse_currency
from kassa.ledger import chart
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer, journal
from kassa.payments import repository

DEFAULT_PERCENT_BPS = 290  # 2.9 %
DEFAULT_FIXED = 30  # minor units
SETTLEMENT_DAYS = 2


@dataclass(frozen=True, slots=True)
class FeePlan:
    percent_bps: int
    fixed: int
    refund_fees: bool

    def fee(self, amount: int) -> int:
        """The platform fee on ``amount``: percent rounded half up, plus the fixed part, never
        more than the amount itself."""
        return min(amount, (amount * self.percent_bps + 5_000) // 10_000 + self.fixed)


async def fee_plan(conn: Connection, merchant_id: str, currency: str) -> FeePlan:
    row = await repository.fee_plan(conn, merchant_id, currency)
    if row is None:
        return FeePlan(DEFAULT_PERCENT_BPS, DEFAULT_FIXED, False)
    return FeePlan(row["percent_bps"], row["fixed"], row["refund_fees"])


def available_on(now: datetime) -> datetime:
    """When captured funds settle: midnight UTC, ``SETTLEMENT_DAYS`` days on."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=SETTLEMENT_DAYS + 1)


async def accounts(
    conn: Connection, merchant_id: str, livemode: bool, connector: str, currency: str
) -> tuple[str, str, str]:
    """The PSP clearing, merchant pending and platform fee accounts a payment posts to
    (opened if new)."""
    clearing, pending, fees = await ledger.open_accounts_in(
        conn,
        merchant_id,
        livemode,
        [
            chart.psp_clearing(connector, currency),
            chart.merchant_pending(currency),
            chart.platform_fees(currency),
        ],
    )
    return clearing, pending, fees


async def _post_entry(
    conn: Connection, merchant_id: str, livemode: bool, entry_id: str, transfers: list[Transfer]
) -> None:
    """Post one business event's transfers as one journal entry, in the caller's transaction;
    raises ``TransferRejected`` if the ledger refuses any of them."""
    results = await ledger.post_transfers_in(
        conn, Batch(merchant_id, livemode, journal(entry_id, transfers))
    )
    ledger.raise_for_failures(results)


async def record_capture(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    charge_id: str,
    connector: str,
    amount: int,
    currency: str,
    now: datetime,
    available: datetime | None = None,
) -> tuple[str, int]:
    """Book a capture: the PSP owes ``amount`` (clearing → merchant pending) and the platform
    takes its fee (merchant pending → fees), as one journal entry; plus the charge's balance
    transaction, available on ``available`` (default: the usual settlement delay; a provider
    that pays out later, like BNPL, gives its own). Returns ``(balance transaction id, fee)``."""
    plan = await fee_plan(conn, merchant_id, currency)
    fee = plan.fee(amount)
    clearing, pending, fees = await accounts(conn, merchant_id, livemode, connector, currency)
    transfers = [
        Transfer.single(f"{charge_id}:capture", clearing, pending, amount, currency, "capture")
    ]
    if fee:
        transfers.append(Transfer.single(f"{charge_id}:fee", pending, fees, fee, currency, "fee"))
    await _post_entry(conn, merchant_id, livemode, f"{charge_id}:capture", transfers)
    txn = await balance_transaction(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        amount=amount,
        fee=fee,
        currency=currency,
        type="charge",
        category="charge",
        source_id=charge_id,
        now=now,
        description=None,
        available=available,
    )
    return txn, fee


async def record_refund(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    refund_id: str,
    charge_id: str,
    connector: str,
    amount: int,
    currency: str,
    charge_fee: int,
    charge_amount: int,
    now: datetime,
) -> str:
    """Book a refund: the merchant's balance gives back ``amount`` to the PSP (merchant
    pending → clearing). Fees are kept unless the merchant's plan refunds them
    proportionally. Returns the refund's balance transaction id."""
    plan = await fee_plan(conn, merchant_id, currency)
    clearing, pending, fees = await accounts(conn, merchant_id, livemode, connector, currency)
    transfers = [
        Transfer.single(f"{refund_id}:refund", pending, clearing, amount, currency, "refund")
    ]
    fee_back = (charge_fee * amount) // charge_amount if plan.refund_fees else 0
    if fee_back:
        transfers.append(
            Transfer.single(f"{refund_id}:fee", fees, pending, fee_back, currency, "fee_refund")
        )
    await _post_entry(conn, merchant_id, livemode, f"{refund_id}:refund", transfers)
    return await balance_transaction(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        amount=-amount,
        fee=-fee_back,
        currency=currency,
        type="refund",
        category="refund",
        source_id=refund_id,
        now=now,
        description=f"REFUND FOR CHARGE ({charge_id})",
    )


async def record_refund_reversal(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    refund_id: str,
    connector: str,
    amount: int,
    currency: str,
    fee_back: int,
    now: datetime,
) -> str:
    """Undo a booked refund the PSP refused: ``amount`` comes back from the PSP's clearing
    to the merchant's pending balance, and a fee refunded with it (``fee_back``) goes back to
    the platform, by reversing transfers. Returns the ``refund_failure`` balance transaction."""
    clearing, pending, fees = await accounts(conn, merchant_id, livemode, connector, currency)
    transfers = [
        Transfer.single(
            f"{refund_id}:refund_reversal", clearing, pending, amount, currency, "refund_reversal"
        )
    ]
    if fee_back:
        transfers.append(
            Transfer.single(f"{refund_id}:fee_reversal", pending, fees, fee_back, currency, "fee")
        )
    await _post_entry(conn, merchant_id, livemode, f"{refund_id}:reversal", transfers)
    return await balance_transaction(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        amount=amount,
        fee=fee_back,
        currency=currency,
        type="refund_failure",
        category="refund_failure",
        source_id=refund_id,
        now=now,
        description=f"REFUND FAILURE ({refund_id})",
    )


async def record_return(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    charge_id: str,
    connector: str,
    amount: int,
    currency: str,
    now: datetime,
) -> str:
    """Book money the payer's bank took back after settlement: ``amount`` leaves the
    merchant's pending balance for the bank's clearing (the fee is kept). Returns the
    ``payment_failure_refund`` balance transaction."""
    clearing, pending, _fees = await accounts(conn, merchant_id, livemode, connector, currency)
    transfer = Transfer.single(f"{charge_id}:return", pending, clearing, amount, currency, "return")
    await _post_entry(conn, merchant_id, livemode, f"{charge_id}:return", [transfer])
    return await balance_transaction(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        amount=-amount,
        fee=0,
        currency=currency,
        type="payment_failure_refund",
        category="charge_failure",
        source_id=charge_id,
        now=now,
        description=f"PAYMENT FAILURE ({charge_id})",
    )


async def balance_transaction(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    amount: int,
    fee: int,
    currency: str,
    type: str,
    category: str,
    source_id: str,
    now: datetime,
    description: str | None,
    available: datetime | None = None,
) -> str:
    fee_details: list[dict[str, Any]] = []
    if fee:
        fee_details.append(
            {
                "amount": fee,
                "currency": currency,
                "type": "stripe_fee",
                "description": "Kassa processing fees",
                "application": None,
            }
        )
    row = await repository.insert(
        conn,
        "balance_transactions",
        {
            "merchant_id": merchant_id,
            "id": new_id("txn"),
            "livemode": livemode,
            "created_at": now,
            "amount": amount,
            "fee": fee,
            "net": amount - fee,
            "currency": currency,
            "type": type,
            "reporting_category": category,
            "source_id": source_id,
            "status": "pending",
            "available_on": available or available_on(now),
            "fee_details": fee_details,
            "description": description,
        },
    )
    return str(row["id"])


async def set_fee_plan(
    db: Database,
    merchant_id: str,
    currency: str,
    *,
    percent_bps: int,
    fixed: int,
    refund_fees: bool = False,
) -> FeePlan:
    """Set what the platform charges ``merchant_id`` per capture in ``currency`` (``*`` for
    every currency without a line of its own). Applies to captures from now on."""
    code = "*" if currency == "*" else parse_currency(currency).code
    if not 0 <= percent_bps <= 10_000:
        raise InvalidRequest("percent_bps must be between 0 and 10000", param="percent_bps")
    if fixed < 0:
        raise InvalidRequest("fixed must not be negative", param="fixed")
    async with db.transaction() as conn:
        await repository.set_fee_plan(conn, merchant_id, code, percent_bps, fixed, refund_fees)
    return FeePlan(percent_bps, fixed, refund_fees)
