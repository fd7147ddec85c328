"""Posting: the semantics a caller relies on, on both paths (set-based and sequential)."""

from __future__ import annotations

import asyncpg
import pytest

from kassa.core import clock
from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.errors import TransferRejected
from kassa.ledger.model import Batch, Transfer, journal, linked
from tests.ledger.conftest import Book

pytestmark = pytest.mark.parametrize("sequential", [False, True], ids=["fast", "sequential"])


async def post(db: Database, book: Book, transfers: list[Transfer], sequential: bool) -> list[str]:
    results = await ledger.post_transfers(
        db, Batch(book.merchant_id, False, transfers), sequential=sequential
    )
    return [r.result.value for r in results]


async def balances(db: Database, book: Book, *names: str) -> list[int]:
    accounts = await ledger.get_accounts(db, book.merchant_id, [book[n] for n in names])
    return [accounts[book[n]].balance.posted for n in names]


async def test_single_transfers_and_idempotent_retry(db, book, sequential):
    t = Transfer.single("ch_1:capture", book["bank"], book["wallet"], 500, "usd", "capture")
    assert await post(db, book, [t], sequential) == ["ok"]
    assert await post(db, book, [t], sequential) == ["exists"]
    changed = Transfer.single("ch_1:capture", book["bank"], book["wallet"], 501, "usd", "capture")
    assert await post(db, book, [changed], sequential) == ["exists_with_different_amount"]
    assert await balances(db, book, "bank", "wallet") == [-500, 500]
    assert (await ledger.verify(db, book.merchant_id)).ok


async def test_limits_hold_after_every_transfer_in_a_batch(db, book, sequential):
    fund = Transfer.single("f", book["bank"], book["wallet"], 100, "usd", "fund")
    spend = Transfer.single("s", book["wallet"], book["bank"], 150, "usd", "spend")
    refill = Transfer.single("r", book["bank"], book["wallet"], 100, "usd", "fund")
    # Netted over the batch the wallet ends at +50, but it would be -50 after "s".
    assert await post(db, book, [fund, spend, refill], sequential) == [
        "ok",
        "exceeds_credits",
        "ok",
    ]
    assert await balances(db, book, "wallet") == [200]
    # A burned id stays burned even though the transfer would now fit.
    assert await post(db, book, [spend], sequential) == ["id_already_failed"]


async def test_linked_chain_fails_as_a_whole(db, book, sequential):
    chain = linked(
        [
            Transfer.single("a", book["bank"], book["wallet"], 10, "usd", "x"),
            Transfer.single("b", book["wallet"], book["bank"], 50, "usd", "x"),
        ]
    )
    after = Transfer.single("c", book["bank"], book["wallet"], 5, "usd", "x")
    assert await post(db, book, [*chain, after], sequential) == [
        "linked_event_failed",
        "exceeds_credits",
        "ok",
    ]
    assert await balances(db, book, "wallet") == [5]
    # "a" was not burned (it did not fail itself): the same chain without "b" goes through.
    assert await post(db, book, [chain[0].with_link(False)], sequential) == ["ok"]


async def test_open_chain_is_rejected(db, book, sequential):
    t = Transfer.single("open", book["bank"], book["wallet"], 1, "usd", "x").with_link(True)
    assert await post(db, book, [t], sequential) == ["linked_event_chain_open"]


async def test_two_phase_post_partial_and_void(db, book, sequential):
    await post(
        db,
        book,
        [Transfer.single("fund", book["bank"], book["wallet"], 100, "usd", "f")],
        sequential,
    )
    hold = Transfer.pending("auth", book["wallet"], book["fees"], 80, "usd", "auth")
    assert await post(db, book, [hold], sequential) == ["ok"]
    over = Transfer.single("over", book["wallet"], book["bank"], 30, "usd", "x")
    assert await post(db, book, [over], sequential) == ["exceeds_credits"]
    assert await post(db, book, [Transfer.post("cap", "auth", 60)], sequential) == ["ok"]
    assert await post(db, book, [Transfer.post("cap2", "auth")], sequential) == [
        "pending_transfer_already_posted"
    ]
    assert await post(db, book, [Transfer.void("v", "auth")], sequential) == [
        "pending_transfer_already_posted"
    ]
    assert await post(db, book, [Transfer.post("cap", "auth", 60)], sequential) == ["exists"]
    w = (await ledger.get_account(db, book.merchant_id, book["wallet"])).balance
    assert (w.debits_posted, w.debits_pending, w.available) == (60, 0, 40)
    hold2 = Transfer.pending("auth2", book["wallet"], book["fees"], 40, "usd", "auth")
    assert await post(db, book, [hold2, Transfer.void("rel2", "auth2")], sequential) == ["ok", "ok"]
    assert await post(db, book, [Transfer.post("too_much", "auth2", 1)], sequential) == [
        "pending_transfer_already_voided"
    ]
    assert (await ledger.verify(db, book.merchant_id)).ok


async def test_pending_timeout_expires(db, book, sequential):
    hold = Transfer.pending("exp", book["bank"], book["wallet"], 10, "usd", "auth", timeout=60)
    assert await post(db, book, [hold], sequential) == ["ok"]
    try:
        clock.advance(61)
        assert await post(db, book, [Transfer.post("late", "exp")], sequential) == [
            "pending_transfer_expired"
        ]
        assert await ledger.void_expired_pending(db, merchant_id=book.merchant_id) == 1
        assert await ledger.void_expired_pending(db, merchant_id=book.merchant_id) == 0
    finally:
        clock.reset()
    transfer = await ledger.get_transfer(db, book.merchant_id, "exp")
    assert transfer["resolved_by"] == "exp:expired"
    assert (
        await ledger.get_account(db, book.merchant_id, book["wallet"])
    ).balance.credits_pending == 0
    assert (await ledger.verify(db, book.merchant_id)).ok


async def test_journal_entry_is_all_or_nothing(db, book, sequential):
    entry = journal(
        "ch_9:capture",
        [
            Transfer.single("ch_9:gross", book["bank"], book["wallet"], 100, "usd", "capture"),
            Transfer.single("ch_9:fee", book["wallet"], book["fees"], 3, "usd", "fee"),
        ],
    )
    assert await post(db, book, entry, sequential) == ["ok", "ok"]
    assert await post(db, book, entry, sequential) == ["exists", "exists"]
    again = journal(
        "ch_9:capture", [Transfer.single("ch_9:other", book["bank"], book["wallet"], 1, "usd", "x")]
    )
    assert await post(db, book, again, sequential) == ["journal_already_exists"]
    assert await post(db, book, [entry[0].with_link(False)], sequential) == [
        "exists_with_different_flags"
    ]


async def test_closed_and_unknown_and_currency(db, book, sequential):
    await ledger.close_account(db, book.merchant_id, book["wallet2"])
    results = await post(
        db,
        book,
        [
            Transfer.single("c1", book["bank"], book["wallet2"], 1, "usd", "x"),
            Transfer.single("c2", book["bank"], "la_nope", 1, "usd", "x"),
            Transfer.single("c3", book["bank"], book["eur"], 1, "usd", "x"),
            Transfer.single("c4", book["bank"], book["fees"], 1, "eur", "x"),
        ],
        sequential,
    )
    assert results == [
        "credit_account_already_closed",
        "credit_account_not_found",
        "accounts_must_have_the_same_currency",
        "transfer_must_have_the_same_currency_as_accounts",
    ]


async def test_raise_for_failures_rolls_back_the_callers_transaction(db, book, sequential):
    batch = Batch(
        book.merchant_id,
        False,
        [Transfer.single("rb", book["wallet"], book["bank"], 10, "usd", "x")],
    )

    async def business_operation() -> None:
        async with db.transaction() as conn:
            results = await ledger.post_transfers_in(conn, batch, sequential=sequential)
            ledger.raise_for_failures(results)

    with pytest.raises(TransferRejected) as err:
        await business_operation()
    assert err.value.code == "ledger_exceeds_credits"
    # The burned id was rolled back with everything else: nothing happened.
    fund = Transfer.single("rbf", book["bank"], book["wallet"], 10, "usd", "x")
    assert await post(db, book, [fund, *batch.transfers], sequential) == ["ok", "ok"]


async def test_journal_is_append_only(db, book, sequential):
    await post(
        db, book, [Transfer.single("ao", book["bank"], book["wallet"], 1, "usd", "x")], sequential
    )
    async with db.connection() as conn:
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("UPDATE ledger_transfers SET amount = 2 WHERE id = 'ao'")
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM ledger_transfers WHERE id = 'ao'")
        # The schema refuses a transfer whose currency is not its accounts' (checked once per
        # statement), and an account's identity can never change under its transfers.
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute(
                "UPDATE ledger_accounts SET currency = 'eur' WHERE id = $1", book["wallet"]
            )
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM ledger_accounts WHERE id = $1", book["wallet"])
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                """
                INSERT INTO ledger_transfers SELECT merchant_id, 'forged', livemode, ts + 1,
                    debit_account_id, debit_shard, credit_account_id, credit_shard, amount,
                    'eur', flags, pending_id, timeout, code, journal_id, metadata,
                    dr_debits_posted, dr_credits_posted, dr_debits_pending, dr_credits_pending,
                    cr_debits_posted, cr_credits_posted, cr_debits_pending, cr_credits_pending
                FROM ledger_transfers WHERE id = 'ao'
                """
            )
