"""Chaos tests: the live API, wired to the live sandbox acquirers, with faults injected over
the sandbox's admin API. One API server for the directory, configured with a short breaker
cool-down and short timeouts so a run takes seconds, not minutes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa.connectors import breaker
from kassa.connectors.configuration import (
    BreakerConfig,
    ConnectorsFile,
    Timeouts,
    sandbox_configuration,
)
from kassa.connectors.registry import ConnectorRegistry
from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.payments.jobs import recover_abandoned, resolve_stale
from kassa.payments.service.context import Payments
from tests.conftest import LiveServer, start_api, stop_api
from tests.factories import new_merchant, stripe_client

ACQUIRERS = ("acquirer_a", "acquirer_b")
FAILURE_THRESHOLD = 3
COOL_DOWN_S = 1.0


@pytest.fixture(scope="session")
def chaos_configuration(sandbox: dict[str, Any]) -> ConnectorsFile:
    """Both acquirers, ``acquirer_a`` first; breakers open after three failures and probe
    after one second; an authorisation times out after 1.5 s."""
    config = sandbox_configuration(sandbox)
    connectors = tuple(
        c.model_copy(
            update={
                "breaker": BreakerConfig(
                    failure_threshold=FAILURE_THRESHOLD,
                    cool_down_s=COOL_DOWN_S,
                    probes=1,
                    cache_s=0,
                ),
                "timeouts": Timeouts(authorize=1.5, status=5.0),
            }
        )
        for c in config.connectors
        if c.name in ACQUIRERS
    )
    return config.model_copy(update={"connectors": connectors})


@pytest.fixture(scope="session")
def chaos_server(
    database_url: str, log_dir: Path, chaos_configuration: ConnectorsFile
) -> Iterator[LiveServer]:
    path = log_dir / "chaos-connectors.json"
    path.write_text(json.dumps(chaos_configuration.model_dump(mode="json")))
    server = start_api(
        database_url,
        log_dir,
        {
            "KASSA_CONNECTORS_FILE": str(path),
            "KASSA_RATE_LIMIT_PER_SECOND": "100000",
            "KASSA_RATE_LIMIT_BURST": "100000",
        },
    )
    yield server
    stop_api(server)


@pytest.fixture
async def merchant(db: Database) -> Any:
    return await new_merchant(db)


@pytest.fixture
def client(chaos_server: LiveServer, merchant: Any) -> Any:
    return stripe_client(chaos_server.url, merchant.key("secret"))


@pytest.fixture
def faults(sandbox: dict[str, Any]) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """``faults("acquirer_a", {...})`` configures a sandbox acquirer's faults; every test
    leaves none behind."""
    urls = {name: sandbox["services"][name]["base_url"] for name in ACQUIRERS}

    def apply(name: str, body: dict[str, Any]) -> None:
        httpx.post(f"{urls[name]}/admin/faults", json=body).raise_for_status()

    yield apply
    for url in urls.values():
        httpx.delete(f"{url}/admin/faults").raise_for_status()


@pytest.fixture(autouse=True)
async def closed_breakers(db: Database) -> AsyncIterator[None]:
    """The breakers are shared by every process on this database, other suites' servers
    included: each chaos test starts and ends with them closed."""
    for name in ACQUIRERS:
        await breaker.reset_breaker(db, name)
    yield
    for name in ACQUIRERS:
        await breaker.reset_breaker(db, name)


@pytest.fixture
def records(sandbox: dict[str, Any]) -> Callable[[str, str], list[dict[str, Any]]]:
    """What an acquirer holds under one of our references (its admin API)."""

    def get(name: str, reference: str) -> list[dict[str, Any]]:
        url = sandbox["services"][name]["base_url"]
        data: list[dict[str, Any]] = httpx.get(
            f"{url}/admin/transactions", params={"reference": reference}
        ).json()["data"]
        return data

    return get


@pytest.fixture
def injected(sandbox: dict[str, Any]) -> Callable[[str], dict[str, int]]:
    """The faults an acquirer injected since its faults were last configured."""

    def get(name: str) -> dict[str, int]:
        url = sandbox["services"][name]["base_url"]
        counts: dict[str, int] = httpx.get(f"{url}/admin/faults").json()["injected"]
        return counts

    return get


@pytest.fixture
def resolve(db: Database, chaos_configuration: ConnectorsFile) -> Callable[[], Any]:
    """Run the recovery jobs now: the sweep of abandoned attempts, then an inquiry for every
    attempt still pending (as the scheduled ``resolve_charge`` jobs would)."""

    async def run() -> None:
        registry = ConnectorRegistry.from_configuration(chaos_configuration)
        try:
            await recover_abandoned(Payments(db, registry))
            await resolve_stale(Payments(db, registry), age=timedelta(0))
        finally:
            await registry.close()

    return run


@pytest.fixture(scope="module", autouse=True)
async def ledger_verifies_after_module(db: Database) -> AsyncIterator[None]:
    """Every chaos module ends with the ledger invariant (``kassa ledger verify``)."""
    yield
    report = await ledger.verify(db)
    assert report.ok, report
