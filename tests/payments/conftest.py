"""Payments tests run against the live API, wired to the live sandbox acquirers."""

from __future__ import annotations

import pytest

from kassa.ledger import service as ledger
from tests.factories import new_merchant, stripe_client


@pytest.fixture
async def merchant(db):
    return await new_merchant(db)


@pytest.fixture
def client(api_url, merchant):
    return stripe_client(api_url, merchant.key("secret"))


@pytest.fixture(scope="module", autouse=True)
async def ledger_verifies_after_module(db):
    """Every payments test module ends with the ledger invariant."""
    yield
    report = await ledger.verify(db)
    assert report.ok, report
