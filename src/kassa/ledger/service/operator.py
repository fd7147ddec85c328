"""The operators' read-only surface (HTTP and CLI): Stripe-shaped objects from the ledger.

Operators hold a platform-admin key; they read any merchant's ledger in their key's mode,
one merchant at a time (every ledger query is scoped by merchant)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kassa.core.db import Database, Record
from kassa.core.errors import ResourceMissing
from kassa.core.http.pagination import list_object
from kassa.ledger import repository
from kassa.ledger.schemas import (
    AccountList,
    AccountTransfers,
    account_object,
    entry_object,
    transfer_object,
)
from kassa.ledger.service.reads import account_from_row, balance, history


async def _account_row(db: Database, merchant_id: str, livemode: bool, account_id: str) -> Record:
    async with db.connection() as conn:
        rows = await repository.get_accounts(conn, merchant_id, [account_id])
    if not rows or rows[0]["livemode"] != livemode:
        raise ResourceMissing("ledger account", account_id)
    return rows[0]


async def list_accounts(db: Database, livemode: bool, params: AccountList) -> dict[str, Any]:
    """A page of accounts with current balances."""
    async with db.connection() as conn:
        rows = await repository.list_accounts(
            conn,
            params.merchant,
            livemode,
            owner=params.owner,
            purpose=params.purpose,
            currency=params.currency.lower() if params.currency else None,
            after=params.starting_after,
            before=params.ending_before,
            limit=params.limit + 1,
        )
    page, has_more = params.page(rows)
    return list_object(
        "/v1/ledger/accounts",
        page,
        has_more,
        lambda r: account_object(r, account_from_row(r).balance),
    )


async def retrieve_account(
    db: Database, merchant_id: str, livemode: bool, account_id: str, as_of: int | None = None
) -> dict[str, Any]:
    """One account with its balance now, or as of a unix time."""
    row = await _account_row(db, merchant_id, livemode, account_id)
    if as_of is None:
        return account_object(row, account_from_row(row).balance)
    moment = datetime.fromtimestamp(as_of, tz=UTC)
    past = await balance(db, merchant_id, account_id, as_of=moment)
    return account_object(row, past, as_of)


async def account_transfers(
    db: Database, livemode: bool, account_id: str, params: AccountTransfers
) -> dict[str, Any]:
    """An account's history, newest first, with running balances."""
    await _account_row(db, params.merchant, livemode, account_id)
    entries, has_more = await history(
        db,
        params.merchant,
        account_id,
        limit=params.limit,
        starting_after=params.starting_after,
        ending_before=params.ending_before,
    )
    return list_object(
        f"/v1/ledger/accounts/{account_id}/transfers",
        entries,
        has_more,
        lambda e: entry_object(e.transfer, e.side, e.shard, e.balance_after),
    )


async def retrieve_transfer(
    db: Database, livemode: bool, merchant_id: str, transfer_id: str
) -> dict[str, Any]:
    """One transfer (transfer ids are unique per merchant, hence ``merchant_id``)."""
    async with db.connection() as conn:
        row = await repository.get_transfer(conn, merchant_id, transfer_id)
    if row is None or row["livemode"] != livemode:
        raise ResourceMissing("ledger transfer", transfer_id)
    return transfer_object(row)
