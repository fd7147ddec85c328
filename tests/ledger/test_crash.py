"""Crash test: the posting process is killed with SIGKILL in the middle of its batches (and,
on a private cluster, PostgreSQL is crashed too). Every acknowledged journal entry must be
there after the restart, no journal entry may be partial, and the ledger must verify."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from kassa.core import migrate
from kassa.core.db import Database
from kassa.core.embedded_pg import Cluster
from kassa.ledger import service as ledger
from kassa.ledger.model import AccountSpec
from tests.factories import new_merchant
from tests.ledger.conftest import LoopRunner
from tests.ledger.crash_poster import ENTRIES_PER_BATCH

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class Poster:
    """One run of the posting process, its acknowledgements read as they come."""

    def __init__(self, dsn: str, merchant: str, accounts: list[str], first: int) -> None:
        self.acked: list[str] = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.ledger.crash_poster",
                dsn,
                merchant,
                *accounts,
                str(first),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("J "):
                self.acked.append(line[2:].strip())

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acked) >= count, "the poster acknowledged nothing"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def next_batch(self) -> int:
        last = max(int(j.split(":")[1]) for j in self.acked)
        # Start again one batch back: the retry of a committed batch must answer "exists".
        return last


def setup_books(runner: LoopRunner) -> tuple[str, list[str]]:
    async def make() -> tuple[str, list[str]]:
        merchant = str((await new_merchant(runner.db)).merchant["id"])
        ids = await ledger.open_accounts(
            runner.db,
            merchant,
            False,
            [
                AccountSpec("external:bank", "settlement", "usd"),
                AccountSpec("merchant", "pending", "usd"),
                AccountSpec("platform", "fees", "usd", shards=4),
            ],
        )
        return merchant, ids

    return runner.run(make())


def check(runner: LoopRunner, merchant: str, acked: set[str]) -> None:
    async def go() -> None:
        db: Database = runner.db
        async with db.connection() as conn:
            rows = await conn.fetch(
                "SELECT j.id, j.transfer_count, count(t.id) AS n FROM ledger_journal_entries j"
                " LEFT JOIN ledger_transfers t ON t.merchant_id = j.merchant_id"
                " AND t.journal_id = j.id WHERE j.merchant_id = $1 GROUP BY j.id,"
                " j.transfer_count",
                merchant,
            )
        found = {r["id"]: (r["transfer_count"], r["n"]) for r in rows}
        missing = acked - set(found)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:5]}"
        partial = {j: c for j, c in found.items() if c != (3, 3)}
        assert not partial, f"partial journal entries: {partial}"
        report = await ledger.verify(db, merchant)
        assert report.ok, report.problems

    runner.run(go())


def rounds(
    runner: LoopRunner,
    dsn: str,
    merchant: str,
    accounts: list[str],
    n: int,
    crash_db: Cluster | None = None,
) -> set[str]:
    acked: set[str] = set()
    first = 0
    rng = random.Random(7)
    for _ in range(n):
        poster = Poster(dsn, merchant, accounts, first)
        poster.wait_for(ENTRIES_PER_BATCH)
        time.sleep(rng.uniform(0.05, 0.4))  # somewhere in the middle of a batch
        if crash_db is not None:
            _crash(crash_db)
        poster.kill()
        acked |= set(poster.acked)
        first = poster.next_batch()
        if crash_db is not None:
            crash_db.start()
            runner.run(_reset_pool(runner, dsn))
        check(runner, merchant, acked)
    return acked


def test_poster_killed_mid_batch(database_url: str) -> None:
    runner = LoopRunner(database_url)
    try:
        merchant, accounts = setup_books(runner)
        acked = rounds(runner, database_url, merchant, accounts, 5)
        assert len(acked) >= 5 * ENTRIES_PER_BATCH
    finally:
        runner.close()


def _crash(cluster: Cluster) -> None:
    """Stop PostgreSQL the way a power cut would for the processes: no checkpoint, no
    goodbye; the next start runs crash recovery from the WAL."""
    cmd = [str(cluster.bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(cluster.data_dir)]
    if cluster.os_user:
        cmd = ["runuser", "-u", cluster.os_user, "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd="/")


async def _reset_pool(runner: LoopRunner, dsn: str) -> None:
    await runner.db.pool.expire_connections()


def test_database_crash_mid_batch() -> None:
    base = Path(tempfile.mkdtemp(prefix="kassa-crash-"))
    cluster = Cluster.at(base / "pgdata")
    cluster.init(durable=False)
    # A crash of the server (not of the machine): the WAL must reach the OS before a commit
    # is acknowledged, fsync may stay off.
    with open(cluster.data_dir / "postgresql.conf", "a") as conf:
        conf.write("synchronous_commit = on\n")
    cluster.start()
    runner: LoopRunner | None = None
    try:
        cluster.create_database("kassa")
        migrate.upgrade(cluster.dsn())
        runner = LoopRunner(cluster.dsn())
        merchant, accounts = setup_books(runner)
        acked = rounds(runner, cluster.dsn(), merchant, accounts, 3, crash_db=cluster)
        assert len(acked) >= 3 * ENTRIES_PER_BATCH
    finally:
        if runner is not None:
            runner.close()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
