"""What can be expanded on payment objects (``expand[]=latest_charge`` and the like)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kassa.core.db import Database
from kassa.core.http import expand as expansion
from kassa.customers import service as customers
from kassa.payments import repository
from kassa.payments.schemas import (
    balance_transaction_object,
    charge_object,
    intent_object,
)
from kassa.vault import service as vault

Render = Callable[[Any], dict[str, Any]]


def _loader(
    table: str, render: Render
) -> Callable[[Database, str, bool, str], Awaitable[dict[str, Any] | None]]:
    async def load(
        db: Database, merchant_id: str, livemode: bool, object_id: str
    ) -> dict[str, Any] | None:
        async with db.connection() as conn:
            row = await repository.get(conn, table, merchant_id, livemode, object_id)
        return render(row) if row else None

    return load


_intent = _loader("payment_intents", intent_object)
_charge = _loader("charges", charge_object)
_txn = _loader("balance_transactions", balance_transaction_object)
_customer = customers.customer_for_expansion
_pm = vault.payment_method_for_expansion

for owner, field, target, resolver in (
    ("payment_intent", "customer", "customer", _customer),
    ("payment_intent", "payment_method", "payment_method", _pm),
    ("payment_intent", "latest_charge", "charge", _charge),
    ("charge", "customer", "customer", _customer),
    ("charge", "payment_intent", "payment_intent", _intent),
    ("charge", "payment_method", "payment_method", _pm),
    ("charge", "balance_transaction", "balance_transaction", _txn),
    ("refund", "charge", "charge", _charge),
    ("refund", "payment_intent", "payment_intent", _intent),
    ("refund", "balance_transaction", "balance_transaction", _txn),
    ("balance_transaction", "source", "charge", _charge),
):
    expansion.register(owner, field, target, resolver)
