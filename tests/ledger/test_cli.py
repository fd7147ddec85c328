"""``kassa ledger verify|balance|history`` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer
from tests.ledger.conftest import Book


def kassa(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kassa", "ledger", *args],
        env={**os.environ, "KASSA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_cli_verify_balance_history(db: Database, database_url: str, book: Book):
    await ledger.post_transfers(
        db,
        Batch(
            book.merchant_id,
            False,
            [
                Transfer.single("cli1", book["bank"], book["wallet"], 250, "usd", "x"),
                Transfer.single("cli2", book["wallet"], book["bank"], 50, "usd", "x"),
            ],
        ),
    )
    out = kassa(database_url, "verify", "--merchant", book.merchant_id, "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ok"] is True

    out = kassa(database_url, "balance", book["wallet"], "--merchant", book.merchant_id, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["balance"]["posted"] == 200

    out = kassa(
        database_url,
        "history",
        book["wallet"],
        "--merchant",
        book.merchant_id,
        "--limit",
        "1",
        "--json",
    )
    page = json.loads(out.stdout)
    assert [e["id"] for e in page["data"]] == ["cli2"]
    assert page["has_more"] is True

    out = kassa(database_url, "history", book["wallet"], "--merchant", book.merchant_id)
    assert out.returncode == 0
    assert "cli2" in out.stdout

    out = kassa(database_url, "verify")
    assert out.returncode == 0, out.stdout
    assert "ledger verified" in out.stdout


async def test_verify_reports_a_broken_ledger(db: Database, database_url: str, book: Book):
    await ledger.post_transfers(
        db,
        Batch(
            book.merchant_id,
            False,
            [Transfer.single("brk", book["bank"], book["wallet"], 10, "usd", "x")],
        ),
    )
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 1"
            " WHERE merchant_id = $1 AND id = $2",
            book.merchant_id,
            book["wallet"],
        )
    try:
        report = await ledger.verify(db, book.merchant_id)
        assert not report.ok
        assert any(book["wallet"] in p for p in report.problems)
        assert any("debits_posted" in p for p in report.problems)  # zero sum broken too
        out = kassa(database_url, "verify", "--merchant", book.merchant_id)
        assert out.returncode == 1
        assert "ledger broken" in out.stdout
    finally:
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE ledger_accounts SET credits_posted = credits_posted - 1"
                " WHERE merchant_id = $1 AND id = $2",
                book.merchant_id,
                book["wallet"],
            )
    assert (await ledger.verify(db, book.merchant_id)).ok
