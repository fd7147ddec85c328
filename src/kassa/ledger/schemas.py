"""Operator API parameters and the ``ledger_account`` / ``ledger_transfer`` / ``ledger_entry``
objects (Stripe-style: ``object``, unix ``created``, list objects)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kassa.core.db import Record
from kassa.core.http.pagination import ListParams
from kassa.core.http.params import Params
from kassa.ledger.model import EXPIRE, LINKED, PENDING, POST_PENDING, VOID_PENDING, Balance


class AccountList(ListParams):
    merchant: str = Field(max_length=100)
    owner: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class AccountRetrieve(Params):
    merchant: str = Field(max_length=100)
    # Unix seconds: the balance right after the last transfer at or before this time.
    as_of: int | None = Field(default=None, ge=0)


class AccountTransfers(ListParams):
    merchant: str = Field(max_length=100)


class TransferRetrieve(Params):
    merchant: str = Field(max_length=100)


def balance_object(b: Balance) -> dict[str, int]:
    return b.as_dict()


def account_object(row: Record, balance: Balance, as_of: int | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "ledger_account",
        "merchant": row["merchant_id"],
        "livemode": row["livemode"],
        "owner": row["owner"],
        "purpose": row["purpose"],
        "currency": row["currency"],
        "shards": row["shards"],
        "debits_must_not_exceed_credits": row["debits_must_not_exceed_credits"],
        "credits_must_not_exceed_debits": row["credits_must_not_exceed_debits"],
        "closed": row["closed"],
        "balance": balance_object(balance),
        "created": int(row["created_at"].timestamp()),
        "metadata": row["metadata"],
    }
    if as_of is not None:
        obj["balance_as_of"] = as_of
    return obj


def _type(flags: int) -> str:
    if flags & PENDING:
        return "pending"
    if flags & POST_PENDING:
        return "post_pending"
    if flags & VOID_PENDING:
        return "void_pending"
    return "single"


def _status(resolved_flags: int | None) -> str:
    if resolved_flags is None:
        return "pending"
    if resolved_flags & EXPIRE:
        return "expired"
    return "posted" if resolved_flags & POST_PENDING else "voided"


def transfer_object(row: Record) -> dict[str, Any]:
    flags = row["flags"]
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "ledger_transfer",
        "merchant": row["merchant_id"],
        "livemode": row["livemode"],
        "created": row["ts"] // 1_000_000,
        "timestamp": row["ts"],
        "type": _type(flags),
        "linked": bool(flags & LINKED),
        "debit_account": row["debit_account_id"],
        "credit_account": row["credit_account_id"],
        "amount": row["amount"],
        "currency": row["currency"],
        "code": row["code"],
        "pending_transfer": row["pending_id"],
        "timeout": row["timeout"],
        "journal_entry": row["journal_id"],
        "metadata": row["metadata"] or {},
    }
    if flags & PENDING and "resolved_by" in row:
        obj["status"] = _status(row["resolved_flags"])
        obj["resolved_by"] = row["resolved_by"]
    if flags & VOID_PENDING:
        obj["expired"] = bool(flags & EXPIRE)
    return obj


def entry_object(row: Record, side: str, shard: int, after: Balance) -> dict[str, Any]:
    """One line of an account's history: the transfer, the side the account was on, and the
    (sub-)account's counters right after it."""
    return {
        "id": row["id"],
        "object": "ledger_entry",
        "side": side,
        "shard": shard,
        "balance_after": balance_object(after),
        "transfer": transfer_object(row),
    }
