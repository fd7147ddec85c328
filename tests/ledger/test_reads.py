"""Balances now and at a point in time, totals, history with running balances, conversions,
split accounts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kassa.core.db import Database
from kassa.ledger import chart
from kassa.ledger import service as ledger
from kassa.ledger.errors import AccountConflict
from kassa.ledger.model import AccountSpec, Batch, Transfer
from tests.ledger.conftest import Book


async def post(db: Database, book: Book, *transfers: Transfer) -> list[int | None]:
    results = await ledger.post_transfers(db, Batch(book.merchant_id, False, list(transfers)))
    assert all(r.succeeded for r in results), results
    return [r.timestamp for r in results]


def at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1_000_000, tz=UTC)


async def test_point_in_time_balances(db, book):
    [t1] = await post(
        db, book, Transfer.single("p1", book["bank"], book["wallet"], 100, "usd", "x")
    )
    [t2] = await post(
        db, book, Transfer.pending("p2", book["wallet"], book["bank"], 30, "usd", "x")
    )
    [t3] = await post(db, book, Transfer.post("p3", "p2", 20))
    assert t1 is not None
    assert t2 is not None
    assert t3 is not None
    wallet = book["wallet"]
    before = await ledger.balance(db, book.merchant_id, wallet, as_of=at(t1 - 1))
    assert before.as_dict()["posted"] == 0
    b1 = await ledger.balance(db, book.merchant_id, wallet, as_of=at(t1))
    assert (b1.credits_posted, b1.debits_pending) == (100, 0)
    b2 = await ledger.balance(db, book.merchant_id, wallet, as_of=at(t2))
    assert (b2.available, b2.debits_pending) == (70, 30)
    b3 = await ledger.balance(db, book.merchant_id, wallet, as_of=at(t3))
    now = await ledger.balance(db, book.merchant_id, wallet)
    assert b3 == now
    assert (now.posted, now.available, now.debits_pending) == (80, 80, 0)


async def test_history_pages_with_running_balances(db, book):
    for i in range(7):
        await post(db, book, Transfer.single(f"h{i}", book["bank"], book["wallet"], 10, "usd", "x"))
    page, more = await ledger.history(db, book.merchant_id, book["wallet"], limit=3)
    assert [e.transfer["id"] for e in page] == ["h6", "h5", "h4"]
    assert more
    assert [e.balance_after.posted for e in page] == [70, 60, 50]
    assert all(e.side == "credit" for e in page)
    page2, more2 = await ledger.history(
        db, book.merchant_id, book["wallet"], limit=3, starting_after="h4"
    )
    assert [e.transfer["id"] for e in page2] == ["h3", "h2", "h1"]
    assert more2
    page3, more3 = await ledger.history(
        db, book.merchant_id, book["wallet"], limit=3, starting_after="h1"
    )
    assert [e.transfer["id"] for e in page3] == ["h0"]
    assert not more3
    back, more_back = await ledger.history(
        db, book.merchant_id, book["wallet"], limit=2, ending_before="h3"
    )
    assert [e.transfer["id"] for e in back] == ["h5", "h4"]
    assert more_back


async def test_split_accounts_sum_on_read(db, book):
    # Several connections pick different sub-accounts; reads add them up.
    async def one(i: int) -> None:
        await post(db, book, Transfer.single(f"sp{i}", book["bank"], book["fees"], 5, "usd", "fee"))

    await asyncio.gather(*(one(i) for i in range(20)))
    fees = await ledger.get_account(db, book.merchant_id, book["fees"])
    assert fees.shards == 4
    assert fees.balance.posted == 100
    totals = await ledger.totals(db, book.merchant_id, False, owner="platform")
    assert totals[("platform", "fees", "usd")].posted == 100
    history, _ = await ledger.history(db, book.merchant_id, book["fees"], limit=100)
    assert len(history) == 20
    assert (await ledger.verify(db, book.merchant_id)).ok


async def test_currency_conversion_through_fx_accounts(db, book):
    fx_usd, fx_eur = await ledger.open_accounts(
        db, book.merchant_id, False, [chart.fx("usd"), chart.fx("eur")]
    )
    transfers = ledger.conversion(
        "fx_1",
        debit=book["bank"],
        fx_source=fx_usd,
        fx_target=fx_eur,
        credit=book["eur"],
        amount=10_000,
        source_currency="usd",
        target_currency="eur",
        rate=Decimal("0.9215"),
    )
    await post(db, book, *transfers)
    eur = await ledger.get_account(db, book.merchant_id, book["eur"])
    assert eur.balance.posted == 9215
    assert transfers[0].metadata == transfers[1].metadata
    assert (transfers[1].metadata or {}).get("fx_rate") == "0.9215"
    assert ledger.converted_amount(1000, "usd", "jpy", Decimal("151.337")) == 1513
    report = await ledger.verify(db, book.merchant_id)
    assert report.ok
    assert {c["currency"] for c in report.currencies} == {"usd", "eur"}


async def test_account_ids_are_keys_and_flags_are_fixed(db, book):
    again = await ledger.open_accounts(db, book.merchant_id, False, [chart.merchant_reserve("usd")])
    assert again == await ledger.open_accounts(
        db, book.merchant_id, False, [chart.merchant_reserve("usd")]
    )
    assert again[0] == ledger.account_id(book.merchant_id, False, "merchant", "reserve", "usd")
    assert again[0] != ledger.account_id(book.merchant_id, True, "merchant", "reserve", "usd")
    with pytest.raises(AccountConflict):
        await ledger.open_accounts(
            db, book.merchant_id, False, [AccountSpec("merchant", "reserve", "usd")]
        )
