"""Fixtures for the vault's tests: a merchant, its SDK client, card parameters."""

from __future__ import annotations

from typing import Any

import pytest

from kassa.core import clock
from kassa.core.http.context import ApiKeyIdentity, Caller
from kassa.core.ids import new_id
from tests.factories import new_merchant, stripe_client


def card(number: str = "4242424242424242", cvc: str | None = "123", **extra: Any) -> Any:
    """``payment_methods.create`` parameters for a card expiring in two years."""
    details: dict[str, Any] = {
        "number": number,
        "exp_month": 12,
        "exp_year": clock.now().year + 2,
    }
    if cvc is not None:
        details["cvc"] = cvc
    return {"type": "card", "card": details, **extra}


def caller(merchant_id: str, livemode: bool = False, params: dict | None = None) -> Caller:
    """An authenticated secret-key caller, for calling the vault's services in-process."""
    identity = ApiKeyIdentity(
        key_id=new_id("key"), merchant_id=merchant_id, livemode=livemode, kind="secret"
    )
    return Caller(identity, new_id("req"), params or {}, None, "/v1/payment_methods")


@pytest.fixture
async def merchant(db):
    return await new_merchant(db)


@pytest.fixture
def client(api_url, merchant):
    return stripe_client(api_url, merchant.key("secret"))
