"""Session fixtures: a throwaway PostgreSQL cluster, migrated once; a live API server on it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa.core import migrate
from kassa.core.crypto import generate_key
from kassa.core.db import Database
from kassa.core.embedded_pg import Cluster, free_port

# Secrets for this test session only; set before anything reads settings.
os.environ.setdefault("KASSA_KEK", generate_key())
os.environ.setdefault("KASSA_INDEX_KEY", generate_key())
os.environ.setdefault("KASSA_LOG_JSON", "true")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``last`` run after all others, whatever their file."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="kassa-test-pg-"))
    cluster = Cluster.at(base / "pgdata")
    cluster.init(durable=False)
    cluster.start()
    try:
        cluster.create_database("kassa")
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(pg_cluster: Cluster) -> str:
    dsn = pg_cluster.dsn()
    migrate.upgrade(dsn)
    os.environ["KASSA_DATABASE_URL"] = dsn
    return dsn


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(database_url, 2, 20)
    yield database
    await database.close()


class LiveServer:
    """A `kassa api` process on a free port, its log captured for the PCI log scan."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.proc = proc
        self.log = log


def start_api(
    database_url: str, log_dir: Path, extra_env: dict[str, str] | None = None, workers: int = 1
) -> LiveServer:
    port = free_port()
    log = log_dir / f"api-{port}.log"
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": database_url,
        "KASSA_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kassa", "api", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return LiveServer(url, proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"API did not start:\n{log.read_text()}")


def stop_api(server: LiveServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def sandbox_manifest(sandbox: dict[str, Any], log_dir: Path) -> Path:
    """The sandbox's manifest as a file, for processes configured from it."""
    path = log_dir / "sandbox-manifest.json"
    path.write_text(json.dumps(sandbox))
    return path


@pytest.fixture(scope="session")
def api_server(database_url: str, log_dir: Path, sandbox_manifest: Path) -> Iterator[LiveServer]:
    server = start_api(
        database_url,
        log_dir,
        {
            "KASSA_RATE_LIMIT_PER_SECOND": "100000",
            "KASSA_RATE_LIMIT_BURST": "100000",
            "KASSA_SANDBOX_MANIFEST": str(sandbox_manifest),
        },
    )
    yield server
    stop_api(server)


@pytest.fixture(scope="session")
def api_url(api_server: LiveServer) -> str:
    return api_server.url


SANDBOX_SEED = 7  # the sandbox's ids and injected fault sequences are reproducible from it


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The sandbox (docs/sandbox.md) as a subprocess on free ports, started once per session,
    exactly as ``kassa sandbox`` would be; yields its parsed manifest. It must stop cleanly and
    log no traceback."""
    tmp = tmp_path_factory.mktemp("sandbox")
    manifest, log = tmp / "sandbox.json", tmp / "sandbox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from kassa.sandbox.cli import app; app()",
             "--base-port", "0", "--manifest", str(manifest), "--seed", str(SANDBOX_SEED)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not manifest.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"the sandbox exited early:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox wrote no manifest:\n{log.read_text()}")
            time.sleep(0.02)
        yield json.loads(manifest.read_text())
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()
