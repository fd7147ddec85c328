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

Kind = Literal["acquirer_a", "acquirer_b", "bank", "wallet", "bnpl"]
KINDS: tuple[Kind, ...] = ("acquirer_a", "acquirer_b", "bank", "wallet", "bnpl")
# Card acquirers: what card routing chooses among. The other kinds serve asynchronous payment
# methods (bank debits, wallets, BNPL) and are picked by payment method type instead.
CARD_KINDS: frozenset[str] = frozenset({"acquirer_a", "acquirer_b"})


class ConfigurationError(ValueError):
    """The connectors file (or sandbox manifest) cannot be used; the message says why."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Frozen):
    """Seconds per kind of call. An authorisation may legitimately take long (issuer, 3-D
    Secure lookups); an inquiry should not. A timeout makes the outcome unknown, so these are
    deliberately generous rather than tight."""

    # Capped: the recovery sweep (payments.jobs.ABANDONED_AFTER, 2 min) takes an attempt
    # pending longer than any authorisation can last for one a dead process left; it must
    # never ask about one still in flight.
    connect: float = Field(default=3.0, gt=0, le=10)
    pool: float = Field(default=5.0, gt=0, le=10)  # waiting for a free pooled connection
    authorize: float = Field(default=30.0, gt=0, le=60)
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


class BreakerConfig(_Frozen):
    """The circuit breaker in front of a connector's authorisations (docs/connectors.md).

    It opens after ``failure_threshold`` consecutive failures (unsent requests, unknown
    outcomes: timeouts, 5xx, resets), or when at least ``min_calls`` calls in the last
    ``window_s`` seconds failed at ``failure_ratio`` or more, as counted by each process. Open,
    payments go to the next candidate without a network call; after ``cool_down_s`` up to
    ``probes`` requests (across all processes) test the PSP: a success closes it, a failure
    opens it again."""

    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    window_s: float = Field(default=30.0, gt=0)
    min_calls: int = Field(default=20, ge=1)
    cool_down_s: float = Field(default=30.0, gt=0)
    probes: int = Field(default=1, ge=1)
    # How long a process trusts its copy of the shared state before reading it again.
    cache_s: float = Field(default=1.0, ge=0)


class RetryConfig(_Frozen):
    """Resending an authorisation under the same reference (safe: the reference is the PSP's
    idempotency key) when the error policy says ``retry``: at most ``max_retries`` times,
    waiting a random time up to ``base_delay_s * 2**n`` (capped at ``max_delay_s``: full
    jitter), and never starting a retry (or honouring a ``Retry-After``) that would end past
    ``budget_s`` since the first call. The budget bounds the API's latency."""

    max_retries: int = Field(default=2, ge=0, le=5)
    base_delay_s: float = Field(default=0.1, ge=0)
    max_delay_s: float = Field(default=1.0, ge=0)
    budget_s: float = Field(default=3.0, ge=0, le=10)  # capped like Timeouts, same reason


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
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    # Error policy overrides for this connector, code → retry | cascade | stop (see
    # connectors/policy.py); the database table `kassa connectors errors` edits wins over these.
    errors: dict[str, str] = Field(default_factory=dict)

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

    @field_validator("errors")
    @classmethod
    def _policy(cls, value: dict[str, str]) -> dict[str, str]:
        from kassa.connectors import policy  # it imports this module

        for code, action in value.items():
            try:
                policy.check(code, action)
            except policy.PolicyError as exc:
                raise ValueError(str(exc)) from None
        return value

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
    """Payments meeting every given condition go to the rule's connectors; an omitted
    condition matches anything. The action is exactly one of: ``connector`` (that PSP first),
    ``split`` (a weighted share of the volume per PSP, weights summing to 100) or
    ``connectors`` (those PSPs, ranked by success rate, then estimated fee). Merchant rules
    (``/v1/routing/rules``) are the same shape with an ``id`` and a ``priority``."""

    id: str | None = None  # a merchant rule's id; platform rules are named by position
    priority: int = 0  # merchant rules: lower is evaluated first
    currencies: frozenset[str] | None = None
    brands: frozenset[str] | None = None
    countries: frozenset[str] | None = None  # the card's issuing country (ISO 3166 alpha-2)
    min_amount: int | None = Field(default=None, ge=0)  # minor units, inclusive
    max_amount: int | None = Field(default=None, ge=0)  # minor units, inclusive
    payment_method_types: frozenset[str] | None = None
    connector: str | None = None
    connectors: tuple[str, ...] | None = None
    split: dict[str, int] | None = None

    @field_validator("currencies", "brands", "payment_method_types")
    @classmethod
    def _lower(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return None if value is None else frozenset(v.lower() for v in value)

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        return None if value is None else frozenset(v.upper() for v in value)

    @model_validator(mode="after")
    def _one_action(self) -> RoutingRule:
        given = [a for a in ("connector", "connectors", "split") if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError("a routing rule needs exactly one of connector, connectors, split")
        if self.split is not None and (
            len(self.split) < 2
            or any(w <= 0 for w in self.split.values())
            or sum(self.split.values()) != 100
        ):
            raise ValueError("split needs two or more positive weights adding up to 100")
        if self.connectors is not None and not self.connectors:
            raise ValueError("connectors must not be empty")
        if None not in (self.min_amount, self.max_amount) and (
            self.min_amount > self.max_amount  # type: ignore[operator]
        ):
            raise ValueError("min_amount must not exceed max_amount")
        return self

    @property
    def named(self) -> tuple[str, ...]:
        """Every connector the rule names, in its order."""
        if self.connector is not None:
            return (self.connector,)
        if self.split is not None:
            return tuple(self.split)
        return self.connectors or ()


class SuccessRateConfig(_Frozen):
    """The sliding window success-rate routing ranks by (per connector, brand, card country)
    and the exploration that keeps a recovered PSP in view."""

    window_attempts: int = Field(default=200, gt=0)  # the last N outcomes per key …
    window_seconds: float = Field(default=900.0, gt=0)  # … none older than this
    min_attempts: int = Field(default=10, gt=0)  # fewer: the rate is unknown (ranks as best)
    band: float = Field(default=0.02, gt=0, le=1)  # rates this close rank equal; cost decides
    exploration: float = Field(default=0.05, ge=0, le=0.5)  # share sent to a non-best PSP


class RoutingConfig(_Frozen):
    """Platform routing, for payments no merchant rule matches: rules in order of preference
    and the connector for what no rule names. ``strategy`` ``ordered`` keeps that order;
    ``success_rate`` ranks the same candidates by success rate, then estimated fee."""

    rules: tuple[RoutingRule, ...] = ()
    default: str | None = None
    strategy: Literal["ordered", "success_rate"] = "ordered"
    success_rate: SuccessRateConfig = Field(default_factory=SuccessRateConfig)


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
        named = [n for r in self.routing.rules for n in r.named]
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
    acquirer and one each for the bank, the wallet and BNPL, named after the service, with its
    URL, credentials, secret, currencies, brands and fees; acquirers get the sandbox's 3-D
    Secure server when it has one."""
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
                threeds=threeds if kind in CARD_KINDS else None,
            )
        )
    return configs


def routing_for(configs: list[ConnectorConfig]) -> RoutingConfig:
    """Routing when none is configured: one rule per connector, in the given order, limited
    to what it supports; the first connector is the default. Every connector able to take a
    payment is a candidate, the earlier ones first."""
    configs = [c for c in configs if c.kind in CARD_KINDS]
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
