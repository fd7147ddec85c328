"""Which PSPs Kassa talks to and how: ``ConnectorConfig`` per PSP account, the routing rules,
loaded from one JSON file (``KASSA_CONNECTORS_FILE``) or, for local runs, derived from the
sandbox's manifest (``.kassa/sandbox.json``). See docs/connectors.md for the file format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kassa.connectors.amounts import from_decimal_string

Kind = Literal["acquirer_a", "acquirer_b"]
KINDS: tuple[Kind, ...] = ("acquirer_a", "acquirer_b")


class ConfigurationError(ValueError):
    """The connectors file (or sandbox manifest) cannot be used; the message says why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Frozen):
    """Seconds per kind of call. An authorisation may legitimately take long (issuer, 3-D
    Secure lookups); an inquiry should not. A timeout makes the outcome unknown, so these are
    deliberately generous rather than tight."""

    connect: float = Field(default=3.0, gt=0)
    pool: float = Field(default=5.0, gt=0)  # waiting for a free pooled connection
    authorize: float = Field(default=30.0, gt=0)
    modify: float = Field(default=15.0, gt=0)  # capture, void, refund
    status: float = Field(default=10.0, gt=0)


class FeeSchedule(_Frozen):
    """What the PSP charges: basis points by card brand (``"*"`` = any other brand) plus fixed
    fees per currency as decimal strings in major units (``{"eur": "0.10", "jpy": "15"}``).
    An estimate for routing and expectations; the settlement report is the truth."""

    percent_bps: dict[str, int] = Field(default_factory=dict)
    capture_fixed: dict[str, str] = Field(default_factory=dict)
    refund_fixed: dict[str, str] = Field(default_factory=dict)
    chargeback_fixed: dict[str, str] = Field(default_factory=dict)

    @field_validator("percent_bps", "capture_fixed", "refund_fixed", "chargeback_fixed")
    @classmethod
    def _lower_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return {k.lower(): v for k, v in value.items()}

    def capture_fee(self, amount: int, currency: str, brand: str) -> int:
        """Fee in minor units for capturing ``amount``; the percentage rounds half up."""
        bps = self.percent_bps.get(brand.lower(), self.percent_bps.get("*", 0))
        return (amount * bps + 5_000) // 10_000 + self._fixed(self.capture_fixed, currency)

    def refund_fee(self, currency: str) -> int:
        """Fee in minor units for one refund."""
        return self._fixed(self.refund_fixed, currency)

    def chargeback_fee(self, currency: str) -> int:
        """Fee in minor units for one chargeback."""
        return self._fixed(self.chargeback_fixed, currency)

    @staticmethod
    def _fixed(table: Mapping[str, str], currency: str) -> int:
        raw = table.get(currency.lower())
        return 0 if raw is None else from_decimal_string(raw, currency)


class ThreeDSServer(_Frozen):
    """A 3-D Secure server (the sandbox's ``threeds``) for PSPs that do not run the challenge
    themselves: the connector creates the authentication there when the issuer asks for it."""

    base_url: str
    api_key: str = Field(repr=False)


class ConnectorConfig(_Frozen):
    """One PSP account Kassa can send payments to."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")  # what routing and charges name
    kind: Kind  # which adapter speaks to it
    base_url: str
    credentials: dict[str, str] = Field(repr=False)  # per kind: see docs/connectors.md
    webhook_secret: str = Field(repr=False)
    currencies: frozenset[str] = frozenset()  # lower-case ISO 4217; empty = not restricted
    brands: frozenset[str] = frozenset()  # Stripe's brand names; empty = not restricted
    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    settle_days: int | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_connections: int = Field(default=64, gt=0)
    # Signed timestamps older (or newer) than this are refused: replayed notifications.
    webhook_tolerance_s: float = Field(default=300.0, gt=0)
    threeds: ThreeDSServer | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("currencies", "brands")
    @classmethod
    def _lower(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(v.lower() for v in value)

    def credential(self, key: str) -> str:
        """One of the credentials, or a ``ConfigurationError`` naming the missing one."""
        value = self.credentials.get(key)
        if not value:
            raise ConfigurationError(f"connector {self.name}: credentials.{key} is required")
        return value

    def supports(self, currency: str, brand: str) -> bool:
        """True if this PSP account takes ``brand`` cards in ``currency``."""
        return (not self.currencies or currency.lower() in self.currencies) and (
            not self.brands or brand.lower() in self.brands
        )


class RoutingRule(_Frozen):
    """Payments matching every given condition go to ``connector``; an omitted condition
    matches anything."""

    currencies: frozenset[str] | None = None
    brands: frozenset[str] | None = None
    connector: str

    @field_validator("currencies", "brands")
    @classmethod
    def _lower(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return None if value is None else frozenset(v.lower() for v in value)

    def matches(self, currency: str, brand: str) -> bool:
        """True if a ``brand`` card payment in ``currency`` meets this rule's conditions."""
        return (self.currencies is None or currency.lower() in self.currencies) and (
            self.brands is None or brand.lower() in self.brands
        )


class RoutingConfig(_Frozen):
    """Rules in order of preference, and the connector for what no rule names."""

    rules: tuple[RoutingRule, ...] = ()
    default: str | None = None


class ConnectorsFile(_Frozen):
    """The whole configuration: every connector and the routing between them."""

    connectors: tuple[ConnectorConfig, ...]
    routing: RoutingConfig = Field(default_factory=RoutingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ConnectorsFile:
        """Names are unique and routing names only configured connectors."""
        names = [c.name for c in self.connectors]
        if len(set(names)) != len(names):
            raise ValueError(f"connector names must be unique: {names}")
        named = [r.connector for r in self.routing.rules]
        if self.routing.default is not None:
            named.append(self.routing.default)
        unknown = sorted(set(named) - set(names))
        if unknown:
            raise ValueError(f"routing names unknown connectors: {unknown}")
        return self


def parse_connectors(data: Mapping[str, Any]) -> ConnectorsFile:
    """Validate a connectors document (the JSON file's content)."""
    try:
        return ConnectorsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid connectors configuration: {exc}") from exc


def load_connectors_file(path: Path) -> ConnectorsFile:
    """Read and validate the JSON file named by ``KASSA_CONNECTORS_FILE``."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read connectors file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a JSON object")
    return parse_connectors(data)


def configs_from_sandbox_manifest(manifest: Mapping[str, Any]) -> list[ConnectorConfig]:
    """The connectors for a running sandbox (``kassa sandbox --manifest``): one per card
    acquirer, named after the service, with its URL, credentials, secret, currencies, brands
    and fees; acquirers get the sandbox's 3-D Secure server when it has one."""
    services: Mapping[str, Any] = manifest.get("services") or {}
    threeds_entry = services.get("threeds")
    threeds = None
    if threeds_entry:
        threeds = ThreeDSServer(
            base_url=threeds_entry["base_url"], api_key=threeds_entry["credentials"]["api_key"]
        )
    configs = []
    for kind in KINDS:
        entry = services.get(kind)
        if not entry:
            continue
        configs.append(
            ConnectorConfig(
                name=kind,
                kind=kind,
                base_url=entry["base_url"],
                credentials=dict(entry["credentials"]),
                webhook_secret=entry["webhook_secret"],
                currencies=frozenset(entry.get("currencies") or ()),
                brands=frozenset(entry.get("brands") or ()),
                fees=FeeSchedule.model_validate(entry.get("fees") or {}),
                settle_days=entry.get("settle_days"),
                threeds=threeds,
            )
        )
    return configs


def routing_for(configs: list[ConnectorConfig]) -> RoutingConfig:
    """Routing when none is configured: one rule per connector, in the given order, limited
    to what it supports; the first connector is the default. Every connector able to take a
    payment is a candidate, the earlier ones first."""
    rules = tuple(
        RoutingRule(currencies=c.currencies or None, brands=c.brands or None, connector=c.name)
        for c in configs
    )
    return RoutingConfig(rules=rules, default=configs[0].name if configs else None)


def sandbox_configuration(manifest: Mapping[str, Any]) -> ConnectorsFile:
    """The whole configuration for a local run against the sandbox."""
    configs = configs_from_sandbox_manifest(manifest)
    return ConnectorsFile(connectors=tuple(configs), routing=routing_for(configs))


def load_configuration(
    connectors_file: Path | None, sandbox_manifest: Path | None
) -> ConnectorsFile:
    """The configuration in force: the connectors file when one is set, else the sandbox
    manifest when it exists (local runs), else no connectors at all."""
    if connectors_file is not None:
        return load_connectors_file(connectors_file)
    if sandbox_manifest is not None and sandbox_manifest.exists():
        try:
            manifest = json.loads(sandbox_manifest.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {sandbox_manifest}: {exc}") from exc
        return sandbox_configuration(manifest)
    return ConnectorsFile(connectors=())
