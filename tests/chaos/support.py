"""Helpers for chaos tests: pay through the SDK, read the books and the metrics."""

from __future__ import annotations

import re
from typing import Any

import httpx
import stripe

from kassa.core.db import Database


def pay(client: Any, amount: int, token: str = "pm_card_visa") -> tuple[str, str, str | None]:
    """Create and confirm a payment through the SDK: (intent id, status, error code)."""
    try:
        pi = client.v1.payment_intents.create(
            {"amount": amount, "currency": "usd", "payment_method": token, "confirm": True}
        )
    except stripe.CardError as exc:
        failed = exc.error.payment_intent if exc.error else None
        if failed is None:
            raise
        return failed.id, failed.status, exc.error.code if exc.error else None
    return pi.id, pi.status, None


async def intent_row(db: Database, merchant_id: str, intent_id: str) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow(
            "SELECT id, status, amount, amount_received, latest_charge, last_payment_error "
            "FROM payment_intents WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            intent_id,
        )


async def charge_rows(db: Database, merchant_id: str, intent_id: str) -> list[Any]:
    async with db.connection() as conn:
        return list(
            await conn.fetch(
                "SELECT id, status, outcome, connector, amount_captured, routing FROM charges "
                "WHERE merchant_id = $1 AND intent_id = $2 ORDER BY id",
                merchant_id,
                intent_id,
            )
        )


async def breaker_state(db: Database, connector: str) -> str:
    async with db.connection() as conn:
        state: str | None = await conn.fetchval(
            "SELECT state FROM connector_breakers WHERE connector = $1", connector
        )
    return state or "closed"


def metric(api_url: str, name: str, **labels: str) -> float:
    """One sample of ``/metrics`` (0 when it is not there)."""
    text = httpx.get(f"{api_url}/metrics").text
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if m and want <= set(filter(None, (m.group(1) or "").split(","))):
            return float(m.group(2))
    return 0.0
