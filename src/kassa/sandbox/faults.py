"""Fault injection: latency, error statuses, hangs, outages and webhook mischief.

Each service owns one :class:`Faults`, configured through ``/admin/faults``. Decisions come
from a seeded random generator, so the same configuration and seed give the same sequence of
faults for the same sequence of requests.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR_STATUSES = (429, 500, 502, 503)
LATENCY_DISTRIBUTIONS = ("none", "fixed", "uniform", "normal", "exponential")
SCRIPT_STEPS = ("ok", "timeout", "reset", *(str(s) for s in ERROR_STATUSES))


class FaultKind(enum.Enum):
    """What happens to one request."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The fate of one request: optional latency, then an answer, an error, a hang or a reset.

    ``apply`` says whether an error is returned after the operation was applied; a TIMEOUT
    always applies the operation and answers only after ``hang_s``.
    """

    kind: FaultKind
    latency_s: float = 0.0
    status: int = 0
    hang_s: float = 0.0
    apply: bool = False


class FaultConfigError(ValueError):
    """A fault configuration that cannot be used; the message names the field."""


@dataclass(frozen=True)
class LatencySpec:
    """A latency distribution in milliseconds."""

    distribution: str = "none"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0
    stddev_ms: float = 0.0

    def sample_s(self, rng: random.Random) -> float:
        """Draw one latency in seconds (never negative)."""
        d = self.distribution
        if d == "fixed":
            ms = self.ms
        elif d == "uniform":
            ms = rng.uniform(self.min_ms, self.max_ms)
        elif d == "normal":
            ms = rng.gauss(self.mean_ms, self.stddev_ms)
        elif d == "exponential":
            ms = rng.expovariate(1.0 / self.mean_ms) if self.mean_ms > 0 else 0.0
        else:
            return 0.0
        return max(0.0, ms) / 1000.0


@dataclass(frozen=True)
class FaultConfig:
    """Everything that can go wrong with one service. The defaults mean "nothing"."""

    seed: int | None = None
    path_prefix: str | None = None
    latency: LatencySpec = field(default_factory=LatencySpec)
    error_rates: Mapping[int, float] = field(default_factory=dict)
    error_after_apply: bool = False
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    outage: bool = False
    outage_mode: str = "reset"
    script: tuple[str, ...] = ()
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_delay_s: float = 0.0
    webhook_reorder_window_s: float = 0.0
    # Card acquirers only: the share of approvals the issuer turns into a generic decline
    # (an acquirer "degraded to 50 % declines"). Answered normally, never as an error.
    decline_rate: float = 0.0

    @property
    def steady(self) -> bool:
        """True when latency, error rates, timeouts or an outage are configured."""
        return bool(
            self.latency.distribution != "none"
            or any(self.error_rates.values())
            or self.timeout_rate
            or self.outage
        )

    @property
    def affects_requests(self) -> bool:
        """True when some request may be treated differently from normal."""
        return self.steady or bool(self.script)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultConfig:
        """Validate an admin request body into a configuration."""
        known = {
            "seed", "path_prefix", "latency", "error_rates", "error_after_apply", "timeout_rate",
            "hang_s", "outage", "outage_mode", "script", "webhook_drop_rate",
            "webhook_duplicate_rate", "webhook_delay_s", "webhook_reorder_window_s",
            "decline_rate",
        }  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise FaultConfigError(f"unknown fault fields: {sorted(unknown)}")
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise FaultConfigError("seed must be an integer")
        prefix = data.get("path_prefix")
        if prefix is not None and not isinstance(prefix, str):
            raise FaultConfigError("path_prefix must be a string")
        rates: dict[int, float] = {}
        raw_rates = data.get("error_rates") or {}
        if not isinstance(raw_rates, Mapping):
            raise FaultConfigError("error_rates must be an object of status -> rate")
        for status, rate in raw_rates.items():
            code = int(status) if str(status).isdigit() else -1
            if code not in ERROR_STATUSES:
                raise FaultConfigError(f"error_rates: status must be one of {ERROR_STATUSES}")
            rates[code] = _rate(rate, f"error_rates.{status}")
        timeout_rate = _rate(data.get("timeout_rate", 0.0), "timeout_rate")
        if sum(rates.values()) + timeout_rate > 1.0 + 1e-9:
            raise FaultConfigError("error_rates and timeout_rate add up to more than 1")
        mode = data.get("outage_mode", "reset")
        if mode not in ("reset", "503"):
            raise FaultConfigError("outage_mode must be 'reset' or '503'")
        script = data.get("script") or []
        if not isinstance(script, list) or any(s not in SCRIPT_STEPS for s in script):
            raise FaultConfigError(f"script must be a list of {SCRIPT_STEPS}")
        return cls(
            seed=seed,
            path_prefix=prefix,
            latency=_latency(data.get("latency")),
            error_rates=rates,
            error_after_apply=_bool(data.get("error_after_apply", False), "error_after_apply"),
            timeout_rate=timeout_rate,
            hang_s=_non_negative(data.get("hang_s", 30.0), "hang_s"),
            outage=_bool(data.get("outage", False), "outage"),
            outage_mode=mode,
            script=tuple(str(s) for s in script),
            webhook_drop_rate=_rate(data.get("webhook_drop_rate", 0.0), "webhook_drop_rate"),
            webhook_duplicate_rate=_rate(
                data.get("webhook_duplicate_rate", 0.0), "webhook_duplicate_rate"
            ),
            webhook_delay_s=_non_negative(data.get("webhook_delay_s", 0.0), "webhook_delay_s"),
            webhook_reorder_window_s=_non_negative(
                data.get("webhook_reorder_window_s", 0.0), "webhook_reorder_window_s"
            ),
            decline_rate=_rate(data.get("decline_rate", 0.0), "decline_rate"),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the configuration as the admin endpoint shows it."""
        lat = self.latency
        return {
            "seed": self.seed,
            "path_prefix": self.path_prefix,
            "latency": {
                "distribution": lat.distribution, "ms": lat.ms, "min_ms": lat.min_ms,
                "max_ms": lat.max_ms, "mean_ms": lat.mean_ms, "stddev_ms": lat.stddev_ms,
            },
            "error_rates": {str(k): v for k, v in sorted(self.error_rates.items())},
            "error_after_apply": self.error_after_apply,
            "timeout_rate": self.timeout_rate,
            "hang_s": self.hang_s,
            "outage": self.outage,
            "outage_mode": self.outage_mode,
            "script": list(self.script),
            "webhook_drop_rate": self.webhook_drop_rate,
            "webhook_duplicate_rate": self.webhook_duplicate_rate,
            "webhook_delay_s": self.webhook_delay_s,
            "webhook_reorder_window_s": self.webhook_reorder_window_s,
            "decline_rate": self.decline_rate,
        }  # fmt: skip


def _rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise FaultConfigError(f"{name} must be a number between 0 and 1")
    return float(value)


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultConfigError(f"{name} must be a non-negative number")
    return float(value)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise FaultConfigError(f"{name} must be true or false")
    return value


def _latency(data: Any) -> LatencySpec:
    if data is None:
        return LatencySpec()
    if not isinstance(data, Mapping):
        raise FaultConfigError("latency must be an object")
    dist = data.get("distribution", "fixed")
    if dist not in LATENCY_DISTRIBUTIONS:
        raise FaultConfigError(f"latency.distribution must be one of {LATENCY_DISTRIBUTIONS}")
    values = {
        k: _non_negative(data.get(k, 0.0), f"latency.{k}")
        for k in ("ms", "min_ms", "max_ms", "mean_ms", "stddev_ms")
    }
    if dist == "uniform" and values["max_ms"] < values["min_ms"]:
        raise FaultConfigError("latency.max_ms must not be below latency.min_ms")
    return LatencySpec(distribution=dist, **values)


@dataclass(frozen=True, slots=True)
class WebhookFate:
    """What happens to one webhook delivery attempt."""

    drop: bool
    duplicate: bool


class Faults:
    """The fault state of one service: its configuration, generators and counters."""

    def __init__(self, world_seed: int, service: str) -> None:
        self._world_seed = world_seed
        self._service = service
        self.config = FaultConfig()
        self.injected: dict[str, int] = {}
        self._reseed()
        self.inactive = True

    def _reseed(self) -> None:
        seed = self.config.seed if self.config.seed is not None else self._world_seed
        # Separate streams so webhook traffic does not shift the request fault sequence.
        self._rng = random.Random(f"{seed}/{self._service}/requests")
        self._webhook_rng = random.Random(f"{seed}/{self._service}/webhooks")
        self._decline_rng = random.Random(f"{seed}/{self._service}/declines")
        self._script: deque[str] = deque(self.config.script)

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration and restart the random sequences from its seed."""
        self.config = config
        self.injected = {}
        self._reseed()
        self.inactive = not config.affects_requests

    def reset(self) -> None:
        """Remove every fault."""
        self.configure(FaultConfig())

    def plan(self, path: str) -> FaultPlan | None:
        """Decide the fate of a request to ``path``; None means answer normally."""
        cfg = self.config
        if cfg.path_prefix and not path.startswith(cfg.path_prefix):
            return None
        if cfg.outage:
            if cfg.outage_mode == "503":
                return self._count(FaultPlan(FaultKind.ERROR, status=503))
            return self._count(FaultPlan(FaultKind.RESET))
        latency = cfg.latency.sample_s(self._rng)
        if self._script:
            step = self._script.popleft()
            if not self._script and not cfg.steady:
                self.inactive = True
            return self._count(self._scripted(step, latency))
        draw = self._rng.random()
        for status in ERROR_STATUSES:
            rate = cfg.error_rates.get(status, 0.0)
            if draw < rate:
                return self._count(
                    FaultPlan(FaultKind.ERROR, latency, status, apply=cfg.error_after_apply)
                )
            draw -= rate
        if draw < cfg.timeout_rate:
            return self._count(FaultPlan(FaultKind.TIMEOUT, latency, hang_s=cfg.hang_s))
        if latency > 0:
            return FaultPlan(FaultKind.OK, latency)
        return None

    def _scripted(self, step: str, latency: float) -> FaultPlan:
        cfg = self.config
        if step == "timeout":
            return FaultPlan(FaultKind.TIMEOUT, latency, hang_s=cfg.hang_s)
        if step == "reset":
            return FaultPlan(FaultKind.RESET, latency)
        if step == "ok":
            return FaultPlan(FaultKind.OK, latency)
        return FaultPlan(FaultKind.ERROR, latency, int(step), apply=cfg.error_after_apply)

    def _count(self, plan: FaultPlan) -> FaultPlan:
        key = str(plan.status) if plan.kind is FaultKind.ERROR else plan.kind.value
        self.injected[key] = self.injected.get(key, 0) + 1
        return plan

    def issuer_declines(self) -> bool:
        """Decide whether the issuer declines an authorisation it would have approved
        (``decline_rate``); counted as ``decline`` in ``injected``."""
        rate = self.config.decline_rate
        if rate <= 0 or self._decline_rng.random() >= rate:
            return False
        self.injected["decline"] = self.injected.get("decline", 0) + 1
        return True

    def webhook_fate(self) -> WebhookFate:
        """Decide whether a webhook attempt is dropped and whether it is sent twice."""
        cfg = self.config
        drop = cfg.webhook_drop_rate > 0 and self._webhook_rng.random() < cfg.webhook_drop_rate
        duplicate = (
            cfg.webhook_duplicate_rate > 0
            and self._webhook_rng.random() < cfg.webhook_duplicate_rate
        )
        return WebhookFate(drop, duplicate)

    def webhook_delay_s(self) -> float:
        """Return the extra delay before a new webhook's first attempt (reordering jitter)."""
        cfg = self.config
        jitter = 0.0
        if cfg.webhook_reorder_window_s > 0:
            jitter = self._webhook_rng.uniform(0.0, cfg.webhook_reorder_window_s)
        return cfg.webhook_delay_s + jitter

    def to_json(self) -> dict[str, Any]:
        """Return the configuration plus what has been injected so far."""
        return {
            "config": self.config.to_json(),
            "injected": dict(self.injected),
            "script_remaining": list(self._script),
        }
