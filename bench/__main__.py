"""`make bench`: every figure as one JSON line, each beside a pgbench TPC-B reference measured on
the same durable PostgreSQL cluster in the same invocation, so ratios survive a noisy machine.

    python -m bench [--seconds 10] [--only api,ledger,sandbox]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from kassa.core import migrate
from kassa.core.crypto import generate_key
from kassa.core.embedded_pg import Cluster

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="api,payments,ledger,sandbox,events")
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
            # Drivers, each `run(..., duration_s) -> list[figure]`.
            for name, kwargs in (
                ("api", {"dsn": dsn, "workers": args.workers}),
                ("payments", {"dsn": dsn, "workers": args.workers}),
                ("ledger", {"dsn": dsn}),
                ("sandbox", {}),
                ("events", {"dsn": dsn}),
            ):
                if name not in only:
                    continue
                driver = importlib.import_module(f"bench.{name}_bench")
                for figure in driver.run(duration_s=args.seconds, **kwargs):
                    emit(figure, tps)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
