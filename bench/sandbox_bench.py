"""Benchmark: authorisations per second one sandbox acquirer answers.

Starts the sandbox (``kassa.sandbox.cli``) as its own process with no injected latency, then
drives ``POST /v1/payments`` on the JSON acquirer (``acquirer_a``) with the shared keep-alive
load generator (``bench/loadgen.py``): two processes, one request at a time per connection,
every request with its own reference and ``Idempotency-Key`` so none is a replay.

    python bench/sandbox_bench.py [--seconds 10]

One JSON line per figure.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 32
PROCESSES = 2
CARD = "4242424242424242"


@contextmanager
def sandbox() -> Iterator[dict[str, Any]]:
    """Start the sandbox process; yield its manifest; stop it."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "manifest.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", "from kassa.sandbox.cli import app; app()",
             "--base-port", "0", "--manifest", str(manifest)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not manifest.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start")
                time.sleep(0.05)
            yield json.loads(manifest.read_text())
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def authorisations(api_key: str, merchant_account: str) -> Any:
    """Return a load-generator request factory: one fresh authorisation per call."""
    run_id = uuid.uuid4().hex[:8]
    template = (
        '{"amount":{"value":1999,"currency":"EUR"},"reference":"%s","merchantAccount":"'
        + merchant_account
        + '","paymentMethod":{"type":"scheme","number":"'
        + CARD
        + '","expiryMonth":"03","expiryYear":"2040","cvc":"737","holderName":"Bench"}}'
    )

    def make(conn: int, n: int) -> tuple[str, str, dict[str, str], bytes]:
        ref = f"bench-{run_id}-{conn}-{n}"
        headers = {"x-api-key": api_key, "idempotency-key": ref,
                   "content-type": "application/json"}  # fmt: skip
        return "POST", "/v1/payments", headers, (template % ref).encode()

    return make


def run(duration_s: float = 10.0) -> list[dict[str, object]]:
    """Measure the JSON acquirer's authorisations per second; return the figures."""
    from bench import loadgen

    with sandbox() as manifest:
        acquirer = manifest["services"]["acquirer_a"]
        creds = acquirer["credentials"]
        make = authorisations(creds["api_key"], creds["merchant_account"])
        result = loadgen.run(acquirer["base_url"], make, CONCURRENCY, duration_s, PROCESSES)
        # The acquirer's own records must show authorisations, not refusals or replays.
        recent = httpx.get(
            acquirer["base_url"] + "/admin/transactions", params={"limit": "100"}
        ).json()["data"]
        authorised = all(p["status"] == "authorised" for p in recent) and len(recent) == 100
    figure = result.figure(
        "sandbox_acquirer_authorizations_per_s", CONCURRENCY, processes=PROCESSES,
        duration_s=duration_s, all_authorised=authorised,
    )  # fmt: skip
    return [figure]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for figure in run(args.seconds):
        print(json.dumps(figure), flush=True)
