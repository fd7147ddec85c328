"""Connector configuration: the JSON file, the sandbox manifest, and the registry built from
them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kassa.connectors.acquirer_a import ArvonaConnector
from kassa.connectors.acquirer_b import BeltraneConnector
from kassa.connectors.base import AuthorizeOutcome
from kassa.connectors.configuration import (
    ConfigurationError,
    ConnectorConfig,
    load_configuration,
    load_connectors_file,
    sandbox_configuration,
)
from kassa.connectors.registry import ConnectorRegistry, UnknownConnector
from kassa.connectors.routing import RouteRequest

from .support import Admin, auth

EXAMPLE: dict[str, Any] = {
    "connectors": [
        {
            "name": "arvona_eu",
            "kind": "acquirer_a",
            "base_url": "https://checkout.arvona.example/",
            "credentials": {"api_key": "ak_live_x", "merchant_account": "KassaECOM"},
            "webhook_secret": "9F3C1A7E5B2D4C6E8A0B1C2D3E4F5A6B",
            "currencies": ["EUR", "GBP"],
            "brands": ["visa", "mastercard", "amex"],
            "fees": {"percent_bps": {"*": 120, "amex": 290}, "capture_fixed": {"EUR": "0.10"}},
            "timeouts": {"authorize": 20, "status": 5},
        },
        {
            "name": "beltrane_us",
            "kind": "acquirer_b",
            "base_url": "https://gateway.beltrane.example",
            "credentials": {"user": "u", "vendor": "v", "partner": "p", "password": "pw"},
            "webhook_secret": "bt_secret",
            "currencies": ["usd"],
        },
    ],
    "routing": {
        "rules": [{"currencies": ["usd"], "connector": "beltrane_us"}],
        "default": "arvona_eu",
    },
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "connectors.json"
    path.write_text(json.dumps(data))
    return path


def test_connectors_file(tmp_path: Path) -> None:
    loaded = load_connectors_file(write(tmp_path, EXAMPLE))
    arvona, beltrane = loaded.connectors
    assert (arvona.name, arvona.kind, arvona.base_url) == (
        "arvona_eu",
        "acquirer_a",
        "https://checkout.arvona.example",
    )
    assert arvona.currencies == {"eur", "gbp"}
    assert beltrane.currencies == {"usd"}
    assert (arvona.timeouts.authorize, arvona.timeouts.status, arvona.timeouts.modify) == (
        20,
        5,
        15,
    )
    assert arvona.fees.capture_fee(10_000, "eur", "amex") == 290 + 10
    assert arvona.fees.capture_fee(10_000, "eur", "visa") == 120 + 10
    assert loaded.routing.default == "arvona_eu"
    # Secrets stay out of logs and tracebacks.
    assert "ak_live_x" not in repr(arvona)
    assert "bt_secret" not in repr(beltrane)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["connectors"][0].update(kind="acquirer_z"), "kind"),
        (lambda d: d["connectors"][1].update(name="arvona_eu"), "unique"),
        (lambda d: d["routing"].update(default="missing"), "unknown connectors"),
        (lambda d: d["connectors"][0].update(base_url="ftp://x"), "http"),
        (lambda d: d["connectors"][0].update(colour="blue"), "colour"),
        (lambda d: d["connectors"][0].pop("webhook_secret"), "webhook_secret"),
    ],
)
def test_bad_files_are_refused_with_a_reason(tmp_path: Path, change: Any, message: str) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    change(data)
    with pytest.raises(ConfigurationError, match=message):
        load_connectors_file(write(tmp_path, data))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        load_connectors_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigurationError):
        load_connectors_file(tmp_path / "bad.json")


def test_missing_credentials_are_named(tmp_path: Path) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    data["connectors"][0]["credentials"] = {"api_key": "k"}
    loaded = load_connectors_file(write(tmp_path, data))
    with pytest.raises(ConfigurationError, match="credentials.merchant_account"):
        ConnectorRegistry.from_configuration(loaded)


def test_from_the_sandbox_manifest(sandbox: dict[str, Any]) -> None:
    configuration = sandbox_configuration(sandbox)
    # The acquirers, then the bank, wallet and BNPL providers (asynchronous payment methods).
    a, b, *methods = configuration.connectors
    assert [(c.name, c.kind, c.threeds) for c in methods] == [
        ("bank", "bank", None),
        ("wallet", "wallet", None),
        ("bnpl", "bnpl", None),
    ]
    services = sandbox["services"]
    assert (a.name, a.kind, a.base_url) == (
        "acquirer_a",
        "acquirer_a",
        services["acquirer_a"]["base_url"],
    )
    assert b.credentials == services["acquirer_b"]["credentials"]
    assert a.webhook_secret == services["acquirer_a"]["webhook_secret"]
    assert "kwd" in a.currencies
    assert "nzd" in b.currencies
    assert "amex" not in b.brands
    assert a.settle_days == 2
    assert b.settle_days == 1
    assert b.threeds is not None
    assert b.threeds.base_url == services["threeds"]["base_url"]
    assert configuration.routing.default == "acquirer_a"


def test_load_configuration_prefers_the_file(tmp_path: Path, sandbox: dict[str, Any]) -> None:
    manifest = tmp_path / "sandbox.json"
    manifest.write_text(json.dumps(sandbox))
    from_file = load_configuration(write(tmp_path, EXAMPLE), manifest)
    assert [c.name for c in from_file.connectors] == ["arvona_eu", "beltrane_us"]
    from_manifest = load_configuration(None, manifest)
    assert [c.name for c in from_manifest.connectors] == [
        "acquirer_a",
        "acquirer_b",
        "bank",
        "wallet",
        "bnpl",
    ]
    assert load_configuration(None, tmp_path / "absent.json").connectors == ()


async def test_registry_from_the_sandbox(sandbox: dict[str, Any], admin: Admin) -> None:
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    try:
        assert isinstance(registry.get("acquirer_a"), ArvonaConnector)
        assert isinstance(registry.get("acquirer_b"), BeltraneConnector)
        assert registry.names == ["acquirer_a", "acquirer_b", "bank", "wallet", "bnpl"]
        with pytest.raises(UnknownConnector):
            registry.get("acquirer_c")
        assert registry.router.route(RouteRequest("usd", "visa", 1000)).candidates == [
            "acquirer_a",
            "acquirer_b",
        ]
        assert registry.router.route(RouteRequest("mxn", "visa", 1000)).candidates == ["acquirer_b"]
        assert registry.router.route(RouteRequest("eur", "amex", 1000)).candidates == ["acquirer_a"]
        assert registry.router.route(RouteRequest("usd", "discover", 1000)).candidates == [
            "acquirer_b"
        ]
        # The fee schedule matches what the acquirer actually books.
        for name in ("acquirer_a", "acquirer_b"):
            request = auth(amount=10_000, currency="usd", capture=True)
            result = await registry.get(name).authorize(request)
            assert result.outcome is AuthorizeOutcome.CAPTURED
            (item,) = list(admin.record(name, request.reference)["ledger"])
            expected = registry.config(name).fees.capture_fee(10_000, "usd", "visa")
            assert item["fee"] == expected
    finally:
        await registry.close()


def test_supports() -> None:
    c = ConnectorConfig(
        name="x",
        kind="acquirer_b",
        base_url="http://h",
        credentials={},
        webhook_secret="s",
        currencies=frozenset({"USD"}),
    )
    assert c.supports("usd", "anything")
    assert not c.supports("eur", "visa")


def test_a_configuration_round_trips_through_json(sandbox: dict[str, Any], tmp_path: Path) -> None:
    """What ``model_dump(mode="json")`` writes is a valid connectors file (tests write one)."""
    configuration = sandbox_configuration(sandbox)
    path = write(tmp_path, configuration.model_dump(mode="json"))
    assert load_connectors_file(path) == configuration
