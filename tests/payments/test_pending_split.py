"""A merchant's pending balance is split eight ways (every capture writes it twice), and the
migration that split it keeps every balance of accounts opened before, unsplit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from kassa.core import clock
from kassa.core.db import Database
from kassa.ledger import chart
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer
from kassa.payments.service import money
from tests.factories import new_merchant

_MIGRATION = (
    Path(__file__).parents[2] / "migrations/versions/payments_0005_split_merchant_pending.py"
)
_spec = importlib.util.spec_from_file_location("payments_0005", _MIGRATION)
assert _spec is not None
assert _spec.loader is not None
split = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(split)


async def test_captures_spread_over_the_pending_shards(db: Database) -> None:
    merchant_id = str((await new_merchant(db)).merchant["id"])
    async with db.transaction() as conn:
        _clearing, pending, _fees = await money.accounts(
            conn, merchant_id, False, "acquirer_a", "usd"
        )
        rows = await conn.fetch(
            "SELECT shard, shards FROM ledger_accounts WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            pending,
        )
    assert sorted(r["shard"] for r in rows) == list(range(chart.HOT_SHARDS))
    assert {r["shards"] for r in rows} == {chart.HOT_SHARDS}


async def test_the_split_keeps_balances_of_unsplit_pending_accounts(db: Database) -> None:
    merchant_id = str((await new_merchant(db)).merchant["id"])
    # Opened before the split: one row, and money on it.
    clearing, pending = await ledger.open_accounts(
        db,
        merchant_id,
        False,
        [chart.psp_clearing("acquirer_a", "usd"), chart.merchant_pending("usd", shards=1)],
    )
    await ledger.post_transfers(
        db,
        Batch(
            merchant_id,
            False,
            [Transfer.single("ch_old:capture", clearing, pending, 5000, "usd", "capture")],
        ),
    )
    # Code that splits it runs before the migration has (a deploy): it posts to the stored
    # split, one row.
    async with db.transaction() as conn:
        _txn, fee_before = await money.record_capture(
            conn,
            merchant_id=merchant_id,
            livemode=False,
            charge_id="ch_between",
            connector="acquirer_a",
            amount=1000,
            currency="usd",
            now=clock.now(),
        )
    assert (await ledger.balance(db, merchant_id, pending)).posted == 5000 + 1000 - fee_before
    async with db.transaction() as conn:
        await conn.execute(split.UPGRADE)
        rows = await conn.fetch(
            "SELECT shard, shards FROM ledger_accounts WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            pending,
        )
        assert sorted(r["shard"] for r in rows) == list(range(split.SHARDS))
        assert {r["shards"] for r in rows} == {split.SHARDS}
        # Captures now open the split account as it is: no conflict, money moves.
        _txn, fee = await money.record_capture(
            conn,
            merchant_id=merchant_id,
            livemode=False,
            charge_id="ch_new",
            connector="acquirer_a",
            amount=2000,
            currency="usd",
            now=clock.now(),
        )
    balance = await ledger.balance(db, merchant_id, pending)
    assert balance.posted == 5000 + 1000 - fee_before + 2000 - fee
    report = await ledger.verify(db, merchant_id)
    assert report.ok, report.problems
