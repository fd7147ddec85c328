"""Charges, balance and balance transactions: what the merchant reads back."""

from __future__ import annotations

from typing import Any

from kassa.core.errors import ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.ledger import service as ledger
from kassa.payments import repository
from kassa.payments.schemas import (
    BalanceTransactionList,
    ChargeList,
    balance_transaction_object,
    charge_object,
)
from kassa.payments.service.context import Payments


async def retrieve_charge(
    p: Payments, caller: Caller, charge_id: str, expand: list[str]
) -> dict[str, Any]:
    expansion.validate("charge", expand)
    async with p.db.connection() as conn:
        row = await repository.get(conn, "charges", caller.merchant_id, caller.livemode, charge_id)
    if row is None:
        raise ResourceMissing("charge", charge_id, param="charge")
    return await expansion.expand(
        p.db, charge_object(row), expand, caller.merchant_id, caller.livemode
    )


async def list_charges(p: Payments, caller: Caller, params: ChargeList) -> dict[str, Any]:
    expansion.validate("charge", params.expand, is_list=True)
    async with p.db.connection() as conn:
        rows = await repository.list_page(
            conn,
            "charges",
            caller.merchant_id,
            caller.livemode,
            params,
            {"customer_id": params.customer, "intent_id": params.payment_intent},
            params.created,
        )
    page, has_more = params.page(rows)
    result = list_object("/v1/charges", page, has_more, charge_object)
    return await expansion.expand(p.db, result, params.expand, caller.merchant_id, caller.livemode)


async def balance(p: Payments, caller: Caller) -> dict[str, Any]:
    """The merchant's balance per currency, read from the ledger (pending and available)."""
    totals = await ledger.totals(p.db, caller.merchant_id, caller.livemode, owner="merchant")
    sections: dict[str, dict[str, int]] = {"available": {}, "pending": {}}
    for (_owner, purpose, currency), bal in totals.items():
        if purpose in sections:
            sections[purpose][currency] = sections[purpose].get(currency, 0) + bal.posted
    currencies = sorted(set(sections["available"]) | set(sections["pending"]))
    return {
        "object": "balance",
        "livemode": caller.livemode,
        **{
            name: [
                {
                    "amount": amounts.get(c, 0),
                    "currency": c,
                    "source_types": {"card": amounts.get(c, 0)},
                }
                for c in currencies
            ]
            for name, amounts in sections.items()
        },
    }


async def retrieve_balance_transaction(
    p: Payments, caller: Caller, txn_id: str, expand: list[str]
) -> dict[str, Any]:
    expansion.validate("balance_transaction", expand)
    async with p.db.connection() as conn:
        row = await repository.get(
            conn, "balance_transactions", caller.merchant_id, caller.livemode, txn_id
        )
    if row is None:
        raise ResourceMissing("balance_transaction", txn_id, param="id")
    return await expansion.expand(
        p.db, balance_transaction_object(row), expand, caller.merchant_id, caller.livemode
    )


async def list_balance_transactions(
    p: Payments, caller: Caller, params: BalanceTransactionList
) -> dict[str, Any]:
    expansion.validate("balance_transaction", params.expand, is_list=True)
    async with p.db.connection() as conn:
        rows = await repository.list_page(
            conn,
            "balance_transactions",
            caller.merchant_id,
            caller.livemode,
            params,
            {
                "type": params.type,
                "source_id": params.source,
                "currency": params.currency.lower() if params.currency else None,
            },
            params.created,
        )
    page, has_more = params.page(rows)
    result = list_object("/v1/balance_transactions", page, has_more, balance_transaction_object)
    return await expansion.expand(p.db, result, params.expand, caller.merchant_id, caller.livemode)
