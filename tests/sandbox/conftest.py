"""One sandbox process for the whole session, started exactly as ``kassa sandbox`` would be."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable, Iterator

import pytest

from .support import SERVICES, Hook, Receiver, Sandbox, start_sandbox

SEED = 7


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tmp = tmp_path_factory.mktemp("sandbox")
    proc, manifest = start_sandbox(tmp, "--seed", str(SEED))
    sb = Sandbox(json.loads(manifest.read_text()))
    sb.default_settings = {name: sb.admin(name, "GET", "/admin/settings") for name in SERVICES}
    try:
        yield sb
    finally:
        sb.close()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)
    assert code == 0, (tmp / "sandbox.log").read_text()
    assert "Traceback" not in (tmp / "sandbox.log").read_text()


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
