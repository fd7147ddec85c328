"""Connector tests talk to the session's sandbox (tests/conftest.py) over HTTP, as production
would: connectors built from its manifest, faults and settings through its admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from kassa.connectors.acquirer_b import BeltraneConnector
from kassa.connectors.base import Connector
from kassa.connectors.configuration import ConnectorConfig, configs_from_sandbox_manifest
from kassa.connectors.registry import build_connector

from .support import ACQUIRERS, Admin, WebhookReceiver

TOUCHED = (*ACQUIRERS, "threeds")


@pytest.fixture(scope="session")
def admin(sandbox: dict[str, Any]) -> Iterator[Admin]:
    a = Admin(sandbox)
    yield a
    a.close()


@pytest.fixture(scope="session")
def default_settings(admin: Admin) -> dict[str, dict[str, float]]:
    return {name: admin.call(name, "GET", "/admin/settings") for name in TOUCHED}


@pytest.fixture(autouse=True)
def _isolated(admin: Admin, default_settings: dict[str, dict[str, float]]) -> Iterator[None]:
    """Arvona decides modifications quickly; every test leaves no faults, no webhook URL and
    the default settings behind (the sandbox is shared with other suites)."""
    admin.settings("acquirer_a", modification_delay_s=0.02)
    yield
    for name in TOUCHED:
        admin.call(name, "DELETE", "/admin/faults")
        admin.webhook_url(name, None)
        admin.settings(name, **default_settings[name])


@pytest.fixture(scope="session")
def configs(sandbox: dict[str, Any]) -> dict[str, ConnectorConfig]:
    return {c.name: c for c in configs_from_sandbox_manifest(sandbox)}


@pytest.fixture
async def make_connector(
    configs: dict[str, ConnectorConfig], admin: Admin
) -> AsyncIterator[Callable[..., Connector]]:
    """``make_connector("acquirer_a", timeouts=...)``: a connector for a sandbox acquirer,
    with configuration overrides; closed after the test. Notification timestamps are checked
    against the sandbox's world clock (which tests may have moved), or ``now``."""
    made: list[Connector] = []

    def make(name: str, now: Callable[[], float] | None = None, **overrides: Any) -> Connector:
        config = configs[name].model_copy(update=overrides)
        if config.kind == "acquirer_b":
            connector: Connector = BeltraneConnector(config, now=now or admin.now)
        else:
            connector = build_connector(config)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        await connector.close()


@pytest.fixture(params=ACQUIRERS)
def kind(request: pytest.FixtureRequest) -> str:
    """Run the test against each acquirer."""
    return str(request.param)


@pytest.fixture
def connector(kind: str, make_connector: Callable[..., Connector]) -> Connector:
    return make_connector(kind)


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def hooked(kind: str, connector: Connector, admin: Admin, receiver: WebhookReceiver) -> str:
    """Point the acquirer's notifications at a fresh receiver URL verified by ``connector``."""
    url = receiver.endpoint(connector.parse_webhook)
    admin.webhook_url(kind, url)
    return url
