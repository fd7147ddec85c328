"""The foundation's figures: customer creates and reads per second, and API memory."""

from __future__ import annotations

import httpx

from bench import loadgen
from bench.harness import merchant_key, process_tree, rss_mb, running_api

CONCURRENCY = 32


def run(dsn: str, duration_s: float = 10.0, workers: int = 2) -> list[dict[str, object]]:
    key = merchant_key(dsn)
    auth = {"Authorization": f"Bearer {key}"}
    form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
    with running_api(dsn, workers) as (url, pid):

        def create(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
            body = f"email=c{conn}-{n}%40example.com&name=Bench+{n}&metadata[n]={n}".encode()
            return "POST", "/v1/customers", form, body

        created = loadgen.run(url, create, CONCURRENCY, duration_s, processes=2)
        listing = httpx.get(url + "/v1/customers?limit=100", headers=auth).json()["data"]
        ids = [c["id"] for c in listing]

        def retrieve(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
            return "GET", f"/v1/customers/{ids[(conn + n) % len(ids)]}", auth, b""

        read = loadgen.run(url, retrieve, CONCURRENCY, duration_s, processes=2)
        rss = max(rss_mb(p) for p in process_tree(pid))
    return [
        created.figure("api_customer_create", CONCURRENCY, api_workers=workers),
        read.figure("api_customer_retrieve", CONCURRENCY, api_workers=workers),
        {
            "name": "api_process_rss",
            "value": round(rss, 1),
            "unit": "MB",
            "note": "largest API process after the load",
        },
    ]
