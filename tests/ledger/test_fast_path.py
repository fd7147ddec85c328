"""The set-based fast path on its own: which batches it takes, and that what it stores is what
the sequential path stores for the same batch on the same state.

It computes each leg's running counters partly before locking (cumulative deltas per
sub-account, the largest excess each limit must absorb) and adds the locked counters after:
these tests call the fast functions directly, so a batch they decline cannot pass unnoticed
through the sequential fallback."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from kassa.core.db import Connection, Database
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer, journal
from kassa.ledger.service.posting import _columns, now_us
from tests.ledger.conftest import Book, make_book

pytestmark = pytest.mark.parametrize(
    "function", ["ledger_post_fast", "ledger_post_fast_small"], ids=["planned", "generic"]
)

ARGS = (
    "$1, false, $2, $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],"
    " $8::integer[], $9::text[], $10::integer[], $11::text[], $12::text[], $13::jsonb[]"
)


def columns(transfers: list[Transfer]) -> list[list[Any]]:
    """The batch as the fast functions take it, exactly as ``post_transfers`` sends it."""
    return list(_columns(transfers))


async def fast(
    conn: Connection, function: str, book: Book, transfers: list[Transfer]
) -> tuple[bool, list[str | None] | None, list[int | None] | None]:
    """One call of a fast function in its own transaction, committed only if it was done."""
    tr = conn.transaction()
    await tr.start()
    try:
        row = await conn.fetchrow(
            f"SELECT done, results, timestamps FROM {function}({ARGS})",
            book.merchant_id,
            now_us(),
            *columns(transfers),
        )
    except BaseException:
        await tr.rollback()
        raise
    assert row is not None
    if row["done"]:
        await tr.commit()
    else:
        await tr.rollback()
    return row["done"], row["results"], row["timestamps"]


async def sequential(
    conn: Connection, book: Book, transfers: list[Transfer]
) -> tuple[list[str | None], list[int | None]]:
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT results, timestamps FROM ledger_post({ARGS}, 1)",
            book.merchant_id,
            now_us(),
            *columns(transfers),
        )
    assert row is not None
    return row["results"], row["timestamps"]


async def stored(conn: Connection, book: Book) -> dict[str, Any]:
    """A book's state with its ids and timestamps made comparable with another book's: account
    names for ids, and each transfer's place in ledger time for its timestamp."""
    names = {v: k for k, v in book.ids.items()}
    transfers = await conn.fetch(
        "SELECT * FROM ledger_transfers WHERE merchant_id = $1 ORDER BY ts, id", book.merchant_id
    )
    ts_rank = {ts: n for n, ts in enumerate(sorted({t["ts"] for t in transfers}))}
    accounts = await conn.fetch(
        "SELECT * FROM ledger_accounts WHERE merchant_id = $1 ORDER BY id, shard",
        book.merchant_id,
    )
    journals = await conn.fetch(
        "SELECT id, transfer_count, ts FROM ledger_journal_entries WHERE merchant_id = $1"
        " ORDER BY id",
        book.merchant_id,
    )
    timeouts = await conn.fetch(
        "SELECT o.pending_id FROM ledger_pending_timeouts o JOIN ledger_transfers t"
        " ON t.merchant_id = o.merchant_id AND t.id = o.pending_id"
        " WHERE o.merchant_id = $1 ORDER BY o.pending_id",
        book.merchant_id,
    )
    skip = {"merchant_id", "ts", "debit_account_id", "credit_account_id", "metadata"}
    return {
        "transfers": [
            {
                **{k: v for k, v in t.items() if k not in skip},
                "ts": ts_rank[t["ts"]],
                "debit": names[t["debit_account_id"]],
                "credit": names[t["credit_account_id"]],
            }
            for t in transfers
        ],
        "accounts": sorted(
            (
                names[a["id"]],
                a["shard"],
                a["debits_posted"],
                a["credits_posted"],
                a["debits_pending"],
                a["credits_pending"],
                ts_rank.get(a["last_ts"]),
            )
            for a in accounts
        ),
        "journals": [(j["id"], j["transfer_count"], ts_rank[j["ts"]]) for j in journals],
        "timeouts": [t["pending_id"] for t in timeouts],
    }


async def test_a_clean_mixed_batch_stores_what_the_sequential_path_stores(
    db: Database, function: str
) -> None:
    fast_book, seq_book = await make_book(db), await make_book(db)
    # One connection for both books: split accounts pick their sub-account by backend pid.
    async with db.connection() as conn:

        def setup(b: Book) -> list[Transfer]:
            return [
                Transfer.single("fund", b["bank"], b["wallet"], 1000, "usd", "fund"),
                Transfer.single("line", b["credit_line"], b["bank"], 300, "usd", "fund"),
                Transfer.pending("h1", b["wallet"], b["fees"], 200, "usd", "auth", timeout=60),
                Transfer.pending("h2", b["wallet"], b["bank"], 100, "usd", "auth"),
                Transfer.pending("h3", b["bank"], b["wallet2"], 50, "usd", "auth", timeout=60),
            ]

        def batch(b: Book) -> list[Transfer]:
            return [
                Transfer.single("fund", b["bank"], b["wallet"], 1000, "usd", "fund"),  # exists
                Transfer.post("h1:post", "h1", 150),
                Transfer.void("h2:void", "h2"),
                # The wallet's limit is met exactly after this one (1000 - 150 - 850).
                Transfer.single("spend", b["wallet"], b["fees"], 850, "usd", "spend"),
                Transfer.post("h3:post", "h3"),
                Transfer.pending("h4", b["wallet2"], b["bank"], 50, "usd", "auth", timeout=90),
                # The credit line's limit (credits <= debits) met exactly as well.
                Transfer.single("repay", b["bank"], b["credit_line"], 300, "usd", "repay"),
                *journal(
                    "entry",
                    [
                        Transfer.single("e1", b["bank"], b["wallet"], 70, "usd", "capture"),
                        Transfer.single("e2", b["wallet"], b["fees"], 70, "usd", "fee"),
                    ],
                ),
            ]

        done, _, _ = await fast(conn, function, fast_book, setup(fast_book))
        assert done
        await sequential(conn, seq_book, setup(seq_book))
        done, results, stamps = await fast(conn, function, fast_book, batch(fast_book))
        assert done
        seq_results, seq_stamps = await sequential(conn, seq_book, batch(seq_book))
        assert results == seq_results == ["exists"] + [None] * 8
        # One tick per new transfer, in batch order; none for the repeat.
        for got in (stamps, seq_stamps):
            assert got is not None
            first = got[1]
            assert first is not None
            assert got == [None, *(first + k for k in range(8))]
        assert await stored(conn, fast_book) == await stored(conn, seq_book)


@pytest.mark.parametrize(
    ("name", "batch", "taken"),
    [
        # A limit broken after one leg and restored by a later one: declined.
        ("broken_then_restored", [("wallet", "bank", 150, 0), ("bank", "wallet", 100, 0)], False),
        ("exactly_at_the_limit", [("wallet", "bank", 100, 0), ("bank", "wallet", 100, 0)], True),
        # A pending debit counts against the limit.
        ("hold_then_spend", [("wallet", "fees", 60, 2), ("wallet", "bank", 40, 0)], True),
        ("hold_then_overspend", [("wallet", "fees", 60, 2), ("wallet", "bank", 41, 0)], False),
        # The other limit: credits must not exceed debits.
        (
            "credit_line_over",
            [("bank", "credit_line", 101, 0), ("credit_line", "bank", 1, 0)],
            False,
        ),
        ("credit_line_at", [("credit_line", "bank", 1, 0), ("bank", "credit_line", 101, 0)], True),
    ],
)
async def test_limits_are_checked_after_every_leg(
    db: Database,
    function: str,
    name: str,
    batch: list[tuple[str, str, int, int]],
    taken: bool,
) -> None:
    book = await make_book(db)
    async with db.connection() as conn:
        setup = [
            Transfer.single("fund", book["bank"], book["wallet"], 100, "usd", "fund"),
            Transfer.single("line", book["credit_line"], book["bank"], 100, "usd", "fund"),
        ]
        assert (await fast(conn, function, book, setup))[0]
        transfers = [
            Transfer.pending(f"{name}{k}", book[d], book[c], amount, "usd", "x")
            if flags & 2
            else Transfer.single(f"{name}{k}", book[d], book[c], amount, "usd", "x")
            for k, (d, c, amount, flags) in enumerate(batch)
        ]
        before = await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE merchant_id = $1", book.merchant_id
        )
        done, results, _ = await fast(conn, function, book, transfers)
        assert done is taken
        after = await conn.fetchval(
            "SELECT count(*) FROM ledger_transfers WHERE merchant_id = $1", book.merchant_id
        )
        assert after == before + (len(transfers) if taken else 0)
        if taken:
            assert results == [None] * len(transfers)
            # The stored running counters replay.
            assert (await ledger.verify(db, book.merchant_id)).ok


async def test_the_account_check_names_a_transfer_with_a_bad_account(
    db: Database, function: str
) -> None:
    book = await make_book(db)
    async with db.connection() as conn:
        fund = [Transfer.single("ok", book["bank"], book["wallet"], 1, "usd", "x")]
        assert (await fast(conn, function, book, fund))[0]
        copies = """
            INSERT INTO ledger_transfers SELECT merchant_id, 'forged' || g, livemode, ts + g,
                debit_account_id, debit_shard, credit_account_id, credit_shard, amount,
                CASE WHEN g = $2 THEN 'eur' ELSE currency END, flags, pending_id, timeout, code,
                journal_id, metadata, dr_debits_posted, dr_credits_posted, dr_debits_pending,
                dr_credits_pending, cr_debits_posted, cr_credits_posted, cr_debits_pending,
                cr_credits_pending
            FROM ledger_transfers, generate_series(1, 5) AS g
            WHERE merchant_id = $1 AND id = 'ok'
        """
        # Rows sharing their accounts are checked once per account; the one row whose
        # currency is not its accounts' is refused, and named.
        tr = conn.transaction()
        await tr.start()
        try:
            with pytest.raises(asyncpg.ForeignKeyViolationError, match="transfer forged3 of"):
                await conn.execute(copies, book.merchant_id, 3)
        finally:
            await tr.rollback()
        # The same rows, all matching their accounts, pass the check (rolled back: forged
        # transfers would not replay).
        tr = conn.transaction()
        await tr.start()
        try:
            assert await conn.execute(copies, book.merchant_id, 0) == "INSERT 0 5"
        finally:
            await tr.rollback()


async def test_counters_that_would_not_fit_a_bigint_are_left_to_the_sequential_path(
    db: Database, function: str
) -> None:
    """Posted plus pending debits (or credits) past the bigint range: the sequential path
    answers ``overflows_debits``; the fast path must decline rather than store it."""
    book = await make_book(db)
    huge = 9_223_372_036_854_775_800
    transfers = [
        Transfer.single("big", book["bank"], book["fees"], huge, "usd", "x"),
        Transfer.pending("over", book["bank"], book["fees"], 100, "usd", "x"),
    ]
    async with db.connection() as conn:
        done, _, _ = await fast(conn, function, book, transfers)
        assert done is False
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM ledger_transfers WHERE merchant_id = $1", book.merchant_id
            )
            == 0
        )
    results = await ledger.post_transfers(db, Batch(book.merchant_id, False, transfers))
    assert [r.result.value for r in results] == ["ok", "overflows_debits"]
    assert (await ledger.verify(db, book.merchant_id)).ok
