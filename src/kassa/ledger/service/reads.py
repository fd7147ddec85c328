"""Reading the ledger: accounts and balances (now or at a point in time), totals per
owner/purpose/currency, an account's history with running balances, single transfers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kassa.core.db import Database, Record
from kassa.core.errors import ResourceMissing
from kassa.ledger import repository
from kassa.ledger.model import Balance


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    merchant_id: str
    livemode: bool
    owner: str
    purpose: str
    currency: str
    shards: int
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    closed: bool
    created_at: datetime
    metadata: dict[str, Any]
    balance: Balance


def _balance(row: Record) -> Balance:
    return Balance(
        row["debits_posted"], row["credits_posted"], row["debits_pending"], row["credits_pending"]
    )


def account_from_row(row: Record) -> Account:
    return Account(
        id=row["id"],
        merchant_id=row["merchant_id"],
        livemode=row["livemode"],
        owner=row["owner"],
        purpose=row["purpose"],
        currency=row["currency"],
        shards=row["shards"],
        debits_must_not_exceed_credits=row["debits_must_not_exceed_credits"],
        credits_must_not_exceed_debits=row["credits_must_not_exceed_debits"],
        closed=row["closed"],
        created_at=row["created_at"],
        metadata=row["metadata"],
        balance=_balance(row),
    )


def to_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


async def get_accounts(db: Database, merchant_id: str, ids: list[str]) -> dict[str, Account]:
    """Accounts by id with their current balances (sub-accounts summed)."""
    async with db.connection() as conn:
        rows = await repository.get_accounts(conn, merchant_id, ids)
    return {r["id"]: account_from_row(r) for r in rows}


async def get_account(db: Database, merchant_id: str, account_id: str) -> Account:
    found = await get_accounts(db, merchant_id, [account_id])
    if account_id not in found:
        raise ResourceMissing("ledger account", account_id)
    return found[account_id]


async def balance(
    db: Database, merchant_id: str, account_id: str, *, as_of: datetime | None = None
) -> Balance:
    """An account's balance now, or right after the last transfer at or before ``as_of``."""
    async with db.connection() as conn:
        rows = await repository.get_accounts(conn, merchant_id, [account_id])
        if not rows:
            raise ResourceMissing("ledger account", account_id)
        if as_of is None:
            return _balance(rows[0])
        row = await repository.balance_as_of(
            conn, merchant_id, account_id, rows[0]["shards"], to_us(as_of)
        )
    return _balance(row)


async def totals(
    db: Database,
    merchant_id: str,
    livemode: bool,
    *,
    owner: str | None = None,
    purpose: str | None = None,
    currency: str | None = None,
) -> dict[tuple[str, str, str], Balance]:
    """Balances per (owner, purpose, currency), all read in one snapshot."""
    async with db.connection() as conn:
        rows = await repository.totals(conn, merchant_id, livemode, owner, purpose, currency)
    return {(r["owner"], r["purpose"], r["currency"]): _balance(r) for r in rows}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    transfer: Record
    side: str  # "debit" or "credit": which side of the transfer this account was on
    shard: int
    balance_after: Balance  # the sub-account's counters right after this transfer


async def history(
    db: Database,
    merchant_id: str,
    account_id: str,
    *,
    limit: int = 10,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[HistoryEntry], bool]:
    """A page of an account's transfers, newest first, each with the running balance of the
    sub-account it touched; and whether more follow. Cursors are transfer ids."""
    async with db.connection() as conn:
        rows = await repository.get_accounts(conn, merchant_id, [account_id])
        if not rows:
            raise ResourceMissing("ledger account", account_id)
        after = before = None
        cursor = starting_after or ending_before
        if cursor is not None:
            position = await repository.transfer_position(conn, merchant_id, cursor)
            if position is None:
                param = "starting_after" if starting_after else "ending_before"
                raise ResourceMissing("ledger transfer", cursor, param=param)
            if starting_after:
                after = position
            else:
                before = position
        page = await repository.history(
            conn,
            merchant_id,
            account_id,
            rows[0]["shards"],
            after=after,
            before=before,
            limit=limit + 1,
        )
    has_more = len(page) > limit
    page = page[:limit]
    if before is not None:
        page.reverse()
    entries = [
        HistoryEntry(
            r,
            r["side"],
            r["shard"],
            Balance(
                r["after_debits_posted"],
                r["after_credits_posted"],
                r["after_debits_pending"],
                r["after_credits_pending"],
            ),
        )
        for r in page
    ]
    return entries, has_more


async def get_transfer(db: Database, merchant_id: str, transfer_id: str) -> Record:
    """One transfer, with the id of the transfer that resolved it when it is pending."""
    async with db.connection() as conn:
        row = await repository.get_transfer(conn, merchant_id, transfer_id)
    if row is None:
        raise ResourceMissing("ledger transfer", transfer_id)
    return row
