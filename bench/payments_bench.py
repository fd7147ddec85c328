"""End-to-end card payments: ``POST /v1/payment_intents`` with ``confirm=true`` and automatic
capture, through the vault, routing, the sandbox acquirer over loopback, the ledger and the
outbox — the whole payment path, per second and with its latency."""

from __future__ import annotations

from bench import loadgen
from bench.harness import merchant_key, running_api, running_sandbox

CONCURRENCY = 16


def run(dsn: str, duration_s: float = 10.0, workers: int = 2) -> list[dict[str, object]]:
    key = merchant_key(dsn, "Bench payments")
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    body = b"amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true"

    def pay(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
        return "POST", "/v1/payment_intents", headers, body

    with (
        running_sandbox() as manifest,
        running_api(dsn, workers, KASSA_SANDBOX_MANIFEST=str(manifest)) as (url, _pid),
    ):
        loadgen.run(url, pay, CONCURRENCY, 2.0)  # warm-up: pools, prepared statements
        result = loadgen.run(url, pay, CONCURRENCY, duration_s, processes=1)
    return [
        result.figure(
            "card_payments_e2e",
            CONCURRENCY,
            api_workers=workers,
            unit_note="create+confirm, automatic capture, acquirer_a",
        )
    ]
