"""Test data built through the real services (no fixtures that bypass business rules)."""

from __future__ import annotations

import uuid

import stripe

from kassa.core.db import Database
from kassa.merchants import service as merchants
from kassa.merchants.service import NewMerchant


async def new_merchant(db: Database, **kwargs: object) -> NewMerchant:
    name = str(kwargs.pop("name", f"Test merchant {uuid.uuid4().hex[:8]}"))
    return await merchants.create_merchant(db, name=name, **kwargs)  # type: ignore[arg-type]


def stripe_client(api_url: str, key: str) -> stripe.StripeClient:
    """The official SDK pointed at Kassa."""
    return stripe.StripeClient(key, base_addresses={"api": api_url})
