"""Ledger test helpers: a merchant with a small chart of accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import AccountSpec
from tests.factories import new_merchant

T = TypeVar("T")


@dataclass
class Book:
    """A merchant and named ledger accounts."""

    merchant_id: str
    ids: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.ids[name]


# name -> spec: an unlimited funding account, limited accounts both ways, a split account,
# and one in another currency.
SPECS: dict[str, AccountSpec] = {
    "bank": AccountSpec("external:bank", "settlement", "usd"),
    "wallet": AccountSpec("customer", "wallet", "usd", debits_must_not_exceed_credits=True),
    "wallet2": AccountSpec("customer", "wallet2", "usd", debits_must_not_exceed_credits=True),
    "credit_line": AccountSpec("customer", "credit", "usd", credits_must_not_exceed_debits=True),
    "fees": AccountSpec("platform", "fees", "usd", shards=4),
    "eur": AccountSpec("customer", "wallet", "eur"),
}


async def make_book(db: Database, livemode: bool = False) -> Book:
    merchant = await new_merchant(db)
    merchant_id = str(merchant.merchant["id"])
    ids = await ledger.open_accounts(db, merchant_id, livemode, list(SPECS.values()))
    return Book(merchant_id, dict(zip(SPECS, ids, strict=True)))


@pytest.fixture
async def book(db: Database) -> Book:
    return await make_book(db)


class LoopRunner:
    """Runs coroutines on a private event loop with its own pool: hypothesis state machines
    are synchronous, and the session pool belongs to pytest's loop."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.db: Database = self.run(Database.connect(dsn, 1, 4))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.db.close())
        self.loop.close()
