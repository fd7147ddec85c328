"""`make bench`: every figure as one JSON line, each beside a pgbench TPC-B reference measured on
the same durable PostgreSQL cluster in the same invocation, so ratios survive a noisy machine.

    python -m bench [--seconds 10] [--only api,ledger,sandbox]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import loadgen
from kassa.core import migrate
from kassa.core.crypto import generate_key
from kassa.core.db import Database
from kassa.core.embedded_pg import Cluster, free_port

API_CONCURRENCY = 32


def emit(figure: dict[str, Any], reference_tps: float | None = None) -> None:
    if reference_tps and figure.get("unit") in ("req/s", "transfers/s", "payments/s"):
        figure["pgbench_tps"] = round(reference_tps, 1)
        figure["ratio_to_pgbench"] = round(float(figure["value"]) / reference_tps, 3)
    print(json.dumps(figure), flush=True)


def pgbench_tps(cluster: Cluster, seconds: float) -> float:
    """TPC-B (pgbench's default script), 8 clients, on the same cluster."""
    cluster.create_database("pgbench")
    cluster.pgbench("-i", "-q", "-s", "10", "pgbench")
    out = cluster.pgbench(
        "-c", "8", "-j", "2", "-M", "prepared", "-T", str(int(seconds)), "pgbench"
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected pgbench output:\n{out}")
    return float(match.group(1))


def _rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _api_pids(root: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout
    children = [int(p) for p in out.split()]
    return [root, *[g for c in children for g in _api_pids(c)], *children][: 1 + 2 * len(children)]


def api_figures(dsn: str, seconds: float, workers: int) -> list[dict[str, Any]]:
    from kassa.merchants import service

    async def make_merchant() -> str:
        db = await Database.connect(dsn, 1, 2)
        try:
            return (await service.create_merchant(db, name="Bench")).key("secret")
        finally:
            await db.close()

    key = asyncio.run(make_merchant())
    port = free_port()
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": dsn,
        "KASSA_RATE_LIMIT_PER_SECOND": "1e9",
        "KASSA_RATE_LIMIT_BURST": "1000000000",
        "KASSA_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassa", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        auth = {"Authorization": f"Bearer {key}"}
        form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}

        def create(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
            body = f"email=c{conn}-{n}%40example.com&name=Bench+{n}&metadata[n]={n}".encode()
            return "POST", "/v1/customers", form, body

        created = loadgen.run(url, create, API_CONCURRENCY, seconds, processes=2)
        ids = [
            c["id"] for c in httpx.get(url + "/v1/customers?limit=100", headers=auth).json()["data"]
        ]

        def retrieve(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
            return "GET", f"/v1/customers/{ids[(conn + n) % len(ids)]}", auth, b""

        read = loadgen.run(url, retrieve, API_CONCURRENCY, seconds, processes=2)
        rss = max(_rss_mb(pid) for pid in _api_pids(proc.pid))
        return [
            created.figure("api_customer_create", API_CONCURRENCY, api_workers=workers),
            read.figure("api_customer_retrieve", API_CONCURRENCY, api_workers=workers),
            {
                "name": "api_process_rss",
                "value": round(rss, 1),
                "unit": "MB",
                "note": "largest API process after the load",
            },
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="api,ledger,sandbox,events")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    only = set(args.only.split(","))
    os.environ.setdefault("KASSA_KEK", generate_key())
    os.environ.setdefault("KASSA_INDEX_KEY", generate_key())
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        cluster = Cluster.at(Path(tmp) / "pgdata")
        cluster.init(durable=True)
        cluster.start()
        try:
            cluster.create_database("kassa")
            dsn = cluster.dsn()
            migrate.upgrade(dsn)
            tps = pgbench_tps(cluster, args.seconds)
            emit(
                {
                    "name": "pgbench_tpcb",
                    "value": tps,
                    "unit": "tps",
                    "clients": 8,
                    "scale": 10,
                    "durable": True,
                }
            )
            if "api" in only:
                for figure in api_figures(dsn, args.seconds, args.workers):
                    emit(figure, tps)
            # Domain drivers, each `run(...) -> list[figure]`, added as domains land.
            for name, kwargs in (
                ("ledger", {"dsn": dsn}),
                ("sandbox", {}),
                ("events", {"dsn": dsn}),
            ):
                if name not in only:
                    continue
                try:
                    driver = importlib.import_module(f"bench.{name}_bench")
                except ModuleNotFoundError:
                    continue
                for figure in driver.run(duration_s=args.seconds, **kwargs):
                    emit(figure, tps)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
