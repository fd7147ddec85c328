"""Ledger throughput: single transfers from 32 concurrent clients (group commit), and batches
of 1,000 transfers over uniform accounts and with one hot account. Ends with ``verify``.

    python bench/ledger_bench.py [--dsn postgresql://…] [--seconds 10]

Without ``--dsn`` it creates a durable (fsync on) PostgreSQL cluster in a temporary directory
and runs pgbench TPC-B there too, for the ratio. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from kassa.core.db import Database
from kassa.ledger import chart
from kassa.ledger import service as ledger
from kassa.ledger.model import AccountSpec, Batch, Transfer
from kassa.merchants.service import create_merchant

SINGLE_CLIENTS = 32
BATCH_SIZE = 1000
BATCH_WRITERS = 4
# One merchant's batches queue on the hot row; two writers keep one batch's look-ups (done
# before locking) overlapping the other's locked section, more only add contention.
HOT_WRITERS = 2
ACCOUNTS = 1000
# Unmeasured time first: fresh tables, cold caches and first-touch page writes are not the
# steady state being measured.
WARMUP_S = 3.0


async def _merchant_with_accounts(db: Database, n: int) -> tuple[str, list[str], str]:
    merchant = await create_merchant(db, name=f"bench {uuid.uuid4().hex[:8]}")
    merchant_id = str(merchant.merchant["id"])
    specs = [AccountSpec("customer", f"wallet{i}", "usd") for i in range(n)]
    ids = await ledger.open_accounts(db, merchant_id, False, specs)
    [hot] = await ledger.open_accounts(db, merchant_id, False, [chart.platform_fees("usd", 1)])
    return merchant_id, ids, hot


def _pairs(accounts: list[str], hot: str | None, rng: random.Random) -> tuple[str, str]:
    debit = rng.choice(accounts)
    if hot is not None:
        return debit, hot
    credit = rng.choice(accounts)
    while credit == debit:
        credit = rng.choice(accounts)
    return debit, credit


class _Window:
    """The measured part of a phase: after a warm-up during which the tables fill and get
    analysed (as autovacuum would do on a loaded system; plans made on empty-table statistics
    are not the steady state), for ``seconds``."""

    def __init__(self, db: Database, seconds: float) -> None:
        self.db = db
        self.seconds = seconds
        self.measure_from = float("inf")
        self.deadline = float("inf")
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await asyncio.sleep(WARMUP_S)
        async with self.db.connection() as conn:
            await conn.execute("ANALYZE ledger_accounts, ledger_transfers")
        self.measure_from = time.monotonic()
        self.deadline = self.measure_from + self.seconds

    @property
    def measuring(self) -> bool:
        return time.monotonic() >= self.measure_from

    @property
    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def elapsed(self) -> float:
        await self.task
        return time.monotonic() - self.measure_from


async def _singles(db: Database, seconds: float) -> dict[str, Any]:
    merchant_id, accounts, _ = await _merchant_with_accounts(db, ACCOUNTS)
    committer = ledger.GroupCommitter(db)
    window = _Window(db, seconds)
    done = 0
    latencies: list[float] = []

    async def client(n: int) -> None:
        nonlocal done
        rng = random.Random(n)
        k = 0
        while window.running:
            debit, credit = _pairs(accounts, None, rng)
            t = Transfer.single(f"s{n}:{k}", debit, credit, rng.randint(1, 1000), "usd", "bench")
            started = time.perf_counter()
            [result] = await committer.post(Batch(merchant_id, False, [t]))
            if not result.succeeded:
                raise RuntimeError(f"bench transfer failed: {result}")
            if window.measuring:
                latencies.append(time.perf_counter() - started)
                done += 1
            k += 1

    await asyncio.gather(*(client(n) for n in range(SINGLE_CLIENTS)))
    elapsed = await window.elapsed()
    latencies.sort()
    return {
        "name": "ledger_single_transfers_per_s",
        "value": round(done / elapsed, 1),
        "unit": "transfers/s",
        "concurrency": SINGLE_CLIENTS,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


async def _batched(db: Database, seconds: float, hot: bool) -> dict[str, Any]:
    # Uniform: each writer is a merchant of its own (a transaction never spans merchants, so
    # merchants' batches run in parallel). Hot: one merchant, every transfer credits the same
    # unsplit account, so all writers queue on that one row.
    writers: list[tuple[str, list[str], str | None]] = []
    if hot:
        merchant_id, accounts, hot_id = await _merchant_with_accounts(db, ACCOUNTS)
        writers = [(merchant_id, accounts, hot_id)] * HOT_WRITERS
    else:
        for _ in range(BATCH_WRITERS):
            merchant_id, accounts, _ = await _merchant_with_accounts(db, ACCOUNTS)
            writers.append((merchant_id, accounts, None))
    window = _Window(db, seconds)
    done = 0
    tag = "h" if hot else "u"

    async def writer(n: int) -> None:
        nonlocal done
        merchant_id, accounts, hot_id = writers[n]
        rng = random.Random(n)
        b = 0
        while window.running:
            transfers = []
            for k in range(BATCH_SIZE):
                debit, credit = _pairs(accounts, hot_id, rng)
                transfers.append(
                    Transfer.single(
                        f"{tag}{n}:{b}:{k}", debit, credit, rng.randint(1, 1000), "usd", "bench"
                    )
                )
            results = await ledger.post_transfers(db, Batch(merchant_id, False, transfers))
            if not all(r.succeeded for r in results):
                raise RuntimeError("bench batch failed")
            if window.measuring:
                done += len(transfers)
            b += 1

    await asyncio.gather(*(writer(n) for n in range(len(writers))))
    elapsed = await window.elapsed()
    return {
        "name": "ledger_batched_hot_transfers_per_s" if hot else "ledger_batched_transfers_per_s",
        "value": round(done / elapsed, 1),
        "unit": "transfers/s",
        "concurrency": len(writers),
        "batch_size": BATCH_SIZE,
        "accounts": ACCOUNTS + (1 if hot else 0),
        "merchants": 1 if hot else len(writers),
    }


async def _checkpoint(db: Database) -> None:
    # Whatever ran before (pgbench's initialisation writes 150 MB) must not be flushed during
    # our measurement: a checkpoint in progress multiplies commit latency.
    try:
        async with db.connection() as conn:
            await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass


async def _run(dsn: str, duration_s: float) -> list[dict[str, Any]]:
    db = await Database.connect(dsn, 2, SINGLE_CLIENTS + 8)
    try:
        await _checkpoint(db)
        figures = [
            await _singles(db, duration_s),
            await _batched(db, duration_s, hot=False),
            await _batched(db, duration_s, hot=True),
        ]
        started = time.monotonic()
        report = await ledger.verify(db)
        figures.append(
            {
                "name": "ledger_verify",
                "value": 1 if report.ok else 0,
                "unit": "ok",
                "transfers": report.transfers,
                "seconds": round(time.monotonic() - started, 1),
                "problems": report.problems[:5],
            }
        )
    finally:
        await db.close()
    return figures


def run(dsn: str, duration_s: float = 10.0) -> list[dict[str, object]]:
    """Measure the ledger on the database at ``dsn`` (migrated); one dict per figure."""
    return asyncio.run(_run(dsn, duration_s))


def _pgbench_tps(cluster: Any, seconds: float) -> float:
    cluster.create_database("pgbench")
    cluster.pgbench("-i", "-q", "-s", "10", "pgbench")
    out = cluster.pgbench(
        "-c", "8", "-j", "2", "-M", "prepared", "-T", str(int(seconds)), "pgbench"
    )
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    if not match:
        raise RuntimeError(out.stdout)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", help="a migrated Kassa database (default: a new durable one)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if args.dsn:
        for figure in run(args.dsn, args.seconds):
            print(json.dumps(figure), flush=True)
        return
    from kassa.core import migrate
    from kassa.core.embedded_pg import Cluster

    base = Path(tempfile.mkdtemp(prefix="kassa-ledger-bench-"))
    cluster = Cluster.at(base / "pgdata")
    try:
        cluster.init(durable=True)
        cluster.start()
        cluster.create_database("kassa")
        migrate.upgrade(cluster.dsn())
        reference = _pgbench_tps(cluster, args.seconds)
        print(json.dumps({"name": "pgbench_tpcb_tps", "value": reference, "unit": "tps"}))
        for figure in run(cluster.dsn(), args.seconds):
            if figure.get("unit") == "transfers/s":
                figure["ratio_to_pgbench"] = round(float(str(figure["value"])) / reference, 2)
            print(json.dumps(figure), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
