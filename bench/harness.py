"""Processes a benchmark drives: an API server and the sandbox, started and stopped around a
measurement, plus a merchant to call as."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kassa.core.db import Database
from kassa.core.embedded_pg import free_port


def merchant_key(dsn: str, name: str = "Bench") -> str:
    """A new merchant's test secret key."""
    from kassa.merchants import service

    async def make() -> str:
        db = await Database.connect(dsn, 1, 2)
        try:
            return (await service.create_merchant(db, name=name)).key("secret")
        finally:
            await db.close()

    return asyncio.run(make())


def rss_mb(pid: int) -> float:
    """Resident memory of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(root: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(root)], capture_output=True, text=True).stdout
    return [root, *[p for child in out.split() for p in process_tree(int(child))]]


@contextmanager
def running_sandbox() -> Iterator[Path]:
    """``kassa sandbox`` on free ports; yields its manifest's path."""
    with tempfile.TemporaryDirectory(prefix="kassa-bench-sandbox-") as tmp:
        manifest = Path(tmp) / "sandbox.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "kassa", "sandbox", "--base-port", "0", "--manifest",
             str(manifest)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not manifest.exists():
                if proc.poll() is not None:
                    raise RuntimeError("the sandbox exited")
                time.sleep(0.05)
            json.loads(manifest.read_text())
            yield manifest
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@contextmanager
def running_api(dsn: str, workers: int, **env: str) -> Iterator[tuple[str, int]]:
    """``kassa api`` with rate limits out of the way; yields its URL and process id."""
    port = free_port()
    full_env = {
        **os.environ,
        "KASSA_DATABASE_URL": dsn,
        "KASSA_RATE_LIMIT_PER_SECOND": "1e9",
        "KASSA_RATE_LIMIT_BURST": "1000000000",
        "KASSA_LOG_LEVEL": "warning",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kassa", "api", "--port", str(port), "--workers", str(workers)],
        env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)
