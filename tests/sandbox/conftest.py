"""One sandbox process for the whole session: the root ``sandbox`` fixture (tests/conftest.py)
starts it exactly as ``kassa sandbox`` would be and checks that it stops cleanly."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .support import SERVICES, Hook, Receiver, Sandbox


@pytest.fixture(scope="session")
def sandbox(sandbox: dict[str, Any]) -> Iterator[Sandbox]:
    """Clients for every service of the session's sandbox (the root fixture's manifest)."""
    sb = Sandbox(sandbox)
    sb.default_settings = {name: sb.admin(name, "GET", "/admin/settings") for name in SERVICES}
    try:
        yield sb
    finally:
        sb.close()


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _isolated(sandbox: Sandbox) -> Iterator[None]:
    """Each test starts with no faults, no webhook URL and default settings."""
    yield
    for name in SERVICES:
        sandbox.admin(name, "DELETE", "/admin/faults")
        sandbox.admin(name, "PUT", "/admin/webhook-url", {"url": None})
        sandbox.admin(name, "POST", "/admin/settings", sandbox.default_settings[name])


@pytest.fixture
def hook(sandbox: Sandbox, receiver: Receiver) -> Callable[[str], Hook]:
    """``hook("bank")`` points a service's webhooks at a fresh path of the receiver."""

    def make(service: str) -> Hook:
        path = f"/{service}/{uuid.uuid4().hex}"
        sandbox.admin(service, "PUT", "/admin/webhook-url", {"url": receiver.url(path)})
        return Hook(receiver, path)

    return make
