"""Posting's cached plans probe the ledger's unique keys even when they were made on tables that
were never analysed (a fresh install, before autovacuum's first ANALYZE).

A posting connection caches its plans at its first post. Made on empty statistics, a look-up by
the batch's ids used to scan the merchant's whole history (or every account) with the id in a
filter, and kept doing so: a 2-transfer post cost O(merchant history) until the next ANALYZE.
Timing would be flaky; the plans themselves say it (auto_explain, ANALYZE on)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from kassa.core import migrate
from kassa.core.db import Connection, Database
from kassa.core.embedded_pg import Cluster
from kassa.ledger import service as ledger
from kassa.ledger.model import AccountSpec, Batch, Transfer, journal
from tests.factories import new_merchant

LEDGER_TABLES = (
    "ledger_accounts",
    "ledger_transfers",
    "ledger_journal_entries",
    "ledger_failed_transfers",
    "ledger_pending_timeouts",
)
# The key columns a look-up must bind in its index condition, per index a posting plan may
# use. Accounts: (merchant, id) is one account's sub-accounts (at most 64, one per shard), the
# shard being picked by a filter. Any other index on a ledger table (an account's history, the
# accounts' (owner, purpose) key, the expiry list's due index) would be a scan of the merchant.
KEYS = {
    "ledger_transfers_pkey": {"merchant_id", "id"},
    "ledger_transfers_resolution": {"merchant_id", "pending_id"},
    "ledger_failed_transfers_pkey": {"merchant_id", "id"},
    "ledger_journal_entries_pkey": {"merchant_id", "id"},
    "ledger_pending_timeouts_pkey": {"merchant_id", "pending_id"},
    "ledger_accounts_pkey": {"merchant_id", "id"},
    "ledger_accounts_merchant_id_id_shard_livemode_currency_key": {"merchant_id", "id"},
}
SELLERS = 40  # accounts of the merchant besides the two every capture touches
BATCHES = 1000  # of a capture and its fee: 2,000 transfers of history
MAX_REMOVED = 10  # rows a node may read and drop (per loop): a few sub-accounts, no history

# PostgreSQL's own check of the foreign key (merchant_id, pending_id) of a post or void. It
# has the same weakness (on empty statistics its cached plan finds the pending transfer through
# a merchant prefix of ledger_transfers_credit), but it is not a posting function's statement:
# fixing it means replacing the foreign key, a schema change of its own.
RI_CHECK = 'SELECT 1 FROM ONLY "public"."ledger_transfers" x WHERE'
SCAN = re.compile(
    r"(?P<kind>Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: using (?P<index>\S+))? on (?P<rel>\S+)"
)


@pytest.fixture
async def fresh_dsn(pg_cluster: Cluster) -> AsyncIterator[str]:
    """A new, migrated database of its own: its ledger tables have never been analysed, and
    autovacuum is kept off them, so no ANALYZE replaces the plans under test."""
    name = f"kassa_plans_{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(pg_cluster.create_database, name)
    dsn = pg_cluster.dsn(name)
    await asyncio.to_thread(migrate.upgrade, dsn)
    conn = await asyncpg.connect(dsn)
    try:
        for table in LEDGER_TABLES:
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
    finally:
        await conn.close()
    yield dsn
    admin = await asyncpg.connect(pg_cluster.dsn("postgres"))
    try:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


async def never_analysed(conn: Connection) -> bool:
    rows = await conn.fetch(
        """
        SELECT c.reltuples, s.last_analyze, s.last_autoanalyze
        FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE c.relname = ANY ($1::text[])
        """,
        list(LEDGER_TABLES),
    )
    return len(rows) == len(LEDGER_TABLES) and all(
        r["reltuples"] < 0 and r["last_analyze"] is None and r["last_autoanalyze"] is None
        for r in rows
    )


def problems(plans: list[str]) -> tuple[list[str], set[str]]:
    """What is wrong with each logged plan (its offending lines, then the plan), and which key
    indexes the plans probed."""
    found: list[str] = []
    used: set[str] = set()
    for plan in plans:
        if RI_CHECK in plan:
            continue
        lines = plan.splitlines()
        bad: list[str] = []
        for n, line in enumerate(lines):
            removed = re.search(r"Rows Removed by Filter: (\d+)", line)
            if removed and int(removed.group(1)) > MAX_REMOVED:
                bad.append(line.strip())
            scan = SCAN.search(line)
            if not scan or not scan["rel"].startswith("ledger_"):
                continue
            if scan["kind"] == "Seq Scan":
                bad.append(line.strip())
            if scan["kind"] in ("Seq Scan", "Bitmap Heap Scan"):
                continue  # a bitmap heap scan's index is checked on its bitmap index scan
            index = scan["index"] if scan["kind"] != "Bitmap Index Scan" else scan["rel"]
            cond = lines[n + 1].strip() if n + 1 < len(lines) else ""
            bound = (
                set(re.findall(r"\((\w+) = ", cond)) if cond.startswith("Index Cond:") else set()
            )
            need = KEYS.get(index)
            if need is None or not need <= bound:
                bad.append(f"{line.strip()}\n    {cond or 'no index condition'}")
            else:
                used.add(index)
        if bad:
            found.append("\n".join(bad) + "\n--- in:\n" + plan)
    return found, used


async def test_small_batch_plans_made_on_empty_statistics_probe_keys(fresh_dsn: str) -> None:
    db = await Database.connect(fresh_dsn, 1, 2)
    try:
        merchant_id = str((await new_merchant(db)).merchant["id"])
        specs = [
            AccountSpec("psp:plans", "clearing", "usd"),
            AccountSpec("platform", "fees", "usd", shards=4),
            *(AccountSpec(f"seller{i}", "pending", "usd") for i in range(SELLERS)),
        ]
        clearing, fees, *sellers = await ledger.open_accounts(db, merchant_id, False, specs)

        async with db.connection() as conn:

            async def post(transfers: list[Transfer], sequential: bool = False) -> None:
                batch = Batch(merchant_id, False, transfers)
                async with conn.transaction():
                    results = await ledger.post_transfers_in(conn, batch, sequential=sequential)
                assert all(r.succeeded for r in results), results

            async def capture(k: int, sequential: bool = False) -> None:
                """A payment's capture and its fee, as one journal entry."""
                seller = sellers[k % len(sellers)]
                gross = Transfer.single(f"ch_{k}:capture", clearing, seller, 1000, "usd", "capture")
                fee = Transfer.single(f"ch_{k}:fee", seller, fees, 29, "usd", "fee")
                await post(journal(f"ch_{k}:capture", [gross, fee]), sequential)

            async def hold_and_post(k: int) -> None:
                """A hold with a timeout, then its post (which takes it off the expiry list)."""
                hold = Transfer.pending(
                    f"h_{k}", clearing, sellers[0], 50, "usd", "hold", timeout=60
                )
                await post([hold])
                await post([Transfer.post(f"h_{k}:post", f"h_{k}")])

            # This connection plans its posting statements now, on tables never analysed: the
            # fast path, the sequential path (which exact posting falls back to) and the
            # two-phase look-ups.
            assert await never_analysed(conn)
            await capture(0, sequential=True)
            await hold_and_post(0)
            for k in range(1, BATCHES):
                await capture(k)

            plans: list[str] = []

            def collect(_: object, message: asyncpg.PostgresLogMessage) -> None:
                if message.message.startswith("duration:"):
                    plans.append(message.message)

            await conn.execute("LOAD 'auto_explain'")
            await conn.execute(
                "SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;"
                " SET auto_explain.log_nested_statements = on; SET client_min_messages = log"
            )
            conn.add_log_listener(collect)
            try:
                await capture(BATCHES)
                await capture(BATCHES + 1, sequential=True)
                await hold_and_post(1)
            finally:
                conn.remove_log_listener(collect)
                await conn.execute("RESET ALL")
            # The plans logged are still the ones made on empty statistics.
            assert await never_analysed(conn)
    finally:
        await db.close()

    for function in ("ledger_post_fast_small", "ledger_post_sequential"):
        assert any(function in plan for plan in plans), f"{function} did not run"
    found, used = problems(plans)
    assert not found, "\n\n".join(found)
    # Every kind of look-up was logged (ledger_pending_timeouts_pkey: the post's clean-up).
    assert {
        "ledger_transfers_pkey",
        "ledger_transfers_resolution",
        "ledger_failed_transfers_pkey",
        "ledger_journal_entries_pkey",
        "ledger_pending_timeouts_pkey",
    } <= used, used
    assert used & {
        "ledger_accounts_pkey",
        "ledger_accounts_merchant_id_id_shard_livemode_currency_key",
    }, used
