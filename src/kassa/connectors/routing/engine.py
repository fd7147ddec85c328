"""Which PSP takes a payment, and why.

``Router.route`` answers a ``Decision``: every candidate connector best first (the payment goes
to the first; the others are where a cascade goes next), the strategy that put the first one
there, the rule that matched, the scores it compared and a sentence for people.

1. **Merchant rules** (``/v1/routing/rules``), lowest ``priority`` first: the first rule whose
   conditions the payment meets and that names a connector able to take it decides the head
   of the list — its ``connector`` (strategy ``rule``), a weighted pick from its ``split``
   (``split``; the other split members follow), or its ``connectors`` ranked by success rate
   then fee (``success_rate`` or ``cost``).
2. **Platform routing** (the connectors file) when no merchant rule matches: the connector of
   every matching rule in order, then the default. When the first matching platform rule is a
   split or a ranked ``connectors`` set it applies as a merchant rule would; otherwise
   ``strategy: ordered`` keeps the order (``default``) and ``success_rate`` ranks the list.
3. Every other connector platform routing offers follows, as cascade fallbacks.

A connector that cannot take the payment (its configured currencies or brands exclude it) is
never a candidate. Ranking: success rates over the sliding window (``window.SuccessWindow``)
are compared in bands ``band`` wide — an unknown rate (too few attempts) ranks as the best,
so a new connector gets its first payments — and within a band the lower estimated fee
(``FeeSchedule.capture_fee``) wins, then configuration order. A share ``exploration`` of
ranked decisions goes to a random lower-ranked candidate instead, so a PSP that recovers is
noticed. Splits use a smooth weighted round robin per rule and process: over any run of
payments each member's share is within one payment of its weight."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kassa.connectors.configuration import (
    CARD_KINDS,
    ConnectorConfig,
    RoutingConfig,
    RoutingRule,
    SuccessRateConfig,
)
from kassa.connectors.routing.window import SuccessWindow

# Outcomes that are an authorisation answer; anything else (unknown, not sent, a 3-D Secure
# challenge) says nothing about the PSP's approval rate. Availability is the breaker's job.
SUCCESS = frozenset({"authorized", "captured"})
FAILURE = frozenset({"declined"})
_MAX_SPLIT_STATES = 10_000


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What routing knows about a payment."""

    currency: str
    brand: str
    amount: int
    country: str | None = None  # the card's issuing country
    payment_method_type: str = "card"


@dataclass(frozen=True)
class Decision:
    """Where a payment goes and why; ``record()`` is what the charge's ``routing`` keeps."""

    candidates: list[str]
    strategy: str  # rule | split | success_rate | cost | default | none
    reason: str
    rule: str | None = None  # a merchant rule's id, or "platform:<n>" (0-based)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    exploration: bool = False

    @property
    def connector(self) -> str | None:
        return self.candidates[0] if self.candidates else None

    def record(self) -> dict[str, Any]:
        """The charge's ``routing`` field (docs/connectors.md, "The routing record")."""
        return {
            "connector": self.connector,
            "candidates": list(self.candidates),
            "strategy": self.strategy,
            "rule": self.rule,
            "exploration": self.exploration,
            "scores": self.scores,
            "reason": self.reason,
        }


def matches(rule: RoutingRule, p: RouteRequest) -> bool:
    """True if the payment meets every condition the rule sets."""
    return (
        (rule.currencies is None or p.currency.lower() in rule.currencies)
        and (rule.brands is None or p.brand.lower() in rule.brands)
        and (rule.countries is None or (p.country or "").upper() in rule.countries)
        and (rule.min_amount is None or p.amount >= rule.min_amount)
        and (rule.max_amount is None or p.amount <= rule.max_amount)
        and (
            rule.payment_method_types is None
            or p.payment_method_type.lower() in rule.payment_method_types
        )
    )


@dataclass(frozen=True, slots=True)
class _Ranked:
    names: list[str]
    strategy: str
    reason: str
    exploration: bool


class Router:
    """Platform routing plus the state smart routing needs (window, split counters)."""

    def __init__(
        self,
        rules: Sequence[RoutingRule],
        default: str | None = None,
        connectors: Mapping[str, ConnectorConfig] | None = None,
        *,
        strategy: str = "ordered",
        success_rate: SuccessRateConfig | None = None,
        rng: random.Random | None = None,
        window: SuccessWindow | None = None,
    ) -> None:
        """``connectors``, when given, lets ``route`` skip connectors that cannot take a
        payment and price the others (and names the only connectors rules may use)."""
        self.rules = tuple(rules)
        self.default = default
        self.strategy = strategy
        self.settings = success_rate or SuccessRateConfig()
        self._connectors = connectors
        self._rng = rng or random.Random()
        s = self.settings
        self.window = window or SuccessWindow(s.window_attempts, s.window_seconds, s.min_attempts)
        self._split_state: dict[tuple[str, tuple[str, ...]], dict[str, int]] = {}
        if connectors is not None:
            named = {n for r in self.rules for n in r.named} | ({default} if default else set())
            unknown = sorted(named - set(connectors))
            if unknown:
                raise ValueError(f"routing names unknown connectors: {unknown}")

    @classmethod
    def from_config(
        cls,
        config: RoutingConfig,
        connectors: Mapping[str, ConnectorConfig] | None = None,
        *,
        rng: random.Random | None = None,
    ) -> Router:
        """A router for the ``routing`` section of the connectors configuration."""
        return cls(
            config.rules,
            config.default,
            connectors,
            strategy=config.strategy,
            success_rate=config.success_rate,
            rng=rng,
        )

    # -- outcomes ------------------------------------------------------------------------

    def record_outcome(
        self, connector: str, brand: str | None, country: str | None, outcome: str
    ) -> None:
        """Feed a settled attempt's outcome to the success-rate window (authorised or
        captured: success; declined: failure; anything else is not counted)."""
        if outcome in SUCCESS or outcome in FAILURE:
            self.window.record(connector, brand, country, outcome in SUCCESS)

    # -- routing -------------------------------------------------------------------------

    def route(self, p: RouteRequest, merchant_rules: Sequence[RoutingRule] = ()) -> Decision:
        """Candidates for a payment, best first, with the reason (see the module docstring).
        No candidates (strategy ``none``) means nothing configured can take it."""
        platform, platform_rule = self._platform(p)
        for rule in sorted(merchant_rules, key=lambda r: (r.priority, r.id or "")):
            if not matches(rule, p):
                continue
            named = [n for n in rule.named if self.takes(n, p)]
            if named:
                return self._apply(rule, rule.id or "merchant", named, platform, p)
        if platform_rule is not None:
            index, rule = platform_rule
            named = [n for n in rule.named if self.takes(n, p)]
            if rule.connector is None and named:  # a split or a ranked set applies as such
                return self._apply(rule, f"platform:{index}", named, platform, p)
        if not platform:
            return Decision([], "none", "no configured connector can take this payment")
        if self.strategy == "success_rate":
            ranked = self._rank(platform, p)
            label = f"platform:{platform_rule[0]}" if platform_rule else None
            return Decision(
                ranked.names,
                ranked.strategy,
                f"platform routing: {ranked.reason}",
                label,
                self._scores(platform, p),
                ranked.exploration,
            )
        if platform_rule is not None and platform_rule[1].connector == platform[0]:
            index = platform_rule[0]
            reason = f"platform routing rule {index + 1} names {platform[0]}"
            return Decision(
                platform, "default", reason, f"platform:{index}", self._scores(platform, p)
            )
        reason = f"platform default connector {platform[0]}"
        return Decision(platform, "default", reason, None, self._scores(platform, p))

    def takes(self, name: str, p: RouteRequest) -> bool:
        """True if ``name`` is configured (when the router knows the configuration) and takes
        ``p``: a card acquirer for a card, and its currency and brand."""
        if self._connectors is None:
            return True
        config = self._connectors.get(name)
        if config is None or (p.payment_method_type == "card" and config.kind not in CARD_KINDS):
            return False
        return config.supports(p.currency, p.brand)

    def _platform(self, p: RouteRequest) -> tuple[list[str], tuple[int, RoutingRule] | None]:
        """Platform candidates in order, and the first matching platform rule that names a
        connector able to take the payment."""
        names: list[str] = []
        first: tuple[int, RoutingRule] | None = None
        for index, rule in enumerate(self.rules):
            if not matches(rule, p):
                continue
            usable = [n for n in rule.named if self.takes(n, p)]
            if usable and first is None:
                first = (index, rule)
            names.extend(usable)
        if self.default is not None and self.takes(self.default, p):
            names.append(self.default)
        return list(dict.fromkeys(names)), first

    def _apply(
        self,
        rule: RoutingRule,
        label: str,
        named: list[str],
        platform: list[str],
        p: RouteRequest,
    ) -> Decision:
        source = "platform routing" if label.startswith("platform:") else f"rule {label}"
        if rule.split is not None:
            weights = {n: rule.split[n] for n in named}
            pick = self._split_pick(label, weights)
            others = [n for n in named if n != pick]
            rest = self._rank(others, p, explore=False).names if others else []
            head = [pick, *rest]
            shares = "/".join(f"{n} {w}" for n, w in weights.items())
            strategy, exploration = "split", False
            reason = f"{source}: volume split {shares}; this payment's share went to {pick}"
        elif rule.connector is not None:
            head, strategy, exploration = named, "rule", False
            reason = f"{source} (priority {rule.priority}) sends it to {named[0]}"
        else:
            ranked = self._rank(named, p)
            head, strategy, exploration = ranked.names, ranked.strategy, ranked.exploration
            reason = f"{source} (priority {rule.priority}): {ranked.reason}"
        candidates = head + [n for n in platform if n not in head]
        scores = self._scores(candidates, p)
        if rule.split is not None:
            for n in named:
                scores[n]["weight"] = rule.split[n]
        return Decision(candidates, strategy, reason, label, scores, exploration)

    def _split_pick(self, label: str, weights: dict[str, int]) -> str:
        """Smooth weighted round robin (nginx's): exact shares, evenly interleaved."""
        key = (label, tuple(weights))
        state = self._split_state.get(key)
        if state is None:
            if len(self._split_state) >= _MAX_SPLIT_STATES:
                self._split_state.clear()
            state = self._split_state[key] = dict.fromkeys(weights, 0)
        total = sum(weights.values())
        for name, weight in weights.items():
            state[name] += weight
        pick = max(state, key=lambda n: state[n])
        state[pick] -= total
        return pick

    def _fee(self, name: str, p: RouteRequest) -> int:
        config = self._connectors.get(name) if self._connectors is not None else None
        return 0 if config is None else config.fees.capture_fee(p.amount, p.currency, p.brand)

    def _band(self, name: str, p: RouteRequest) -> int:
        rate = self.window.rate(name, p.brand, p.country).rate
        # Unknown ranks with the best so that a connector without history gets tried.
        return int((1.0 if rate is None else rate) / self.settings.band + 1e-9)

    def _rank(self, names: list[str], p: RouteRequest, *, explore: bool = True) -> _Ranked:
        order = {n: i for i, n in enumerate(names)}
        bands = {n: self._band(n, p) for n in names}
        fees = {n: self._fee(n, p) for n in names}
        ranked = sorted(names, key=lambda n: (-bands[n], fees[n], order[n]))
        if len(ranked) < 2:
            return _Ranked(ranked, "success_rate", f"{ranked[0]} is the only candidate", False)
        if explore and self._rng.random() < self.settings.exploration:
            pick = self._rng.choice(ranked[1:])
            ranked.remove(pick)
            return _Ranked(
                [pick, *ranked],
                "success_rate",
                f"exploration: {pick} tried instead of the best-ranked {ranked[0]}",
                True,
            )
        best, second = ranked[0], ranked[1]
        if bands[best] != bands[second]:
            return _Ranked(
                ranked,
                "success_rate",
                f"{best} has the best success rate ({self._describe(best, p)} vs "
                f"{second} {self._describe(second, p)})",
                False,
            )
        if fees[best] != fees[second]:
            return _Ranked(
                ranked,
                "cost",
                f"success rates equal ({self._describe(best, p)} vs "
                f"{self._describe(second, p)}); {best} is cheaper (fee {fees[best]} vs "
                f"{fees[second]})",
                False,
            )
        return _Ranked(
            ranked, "cost", f"success rates and fees equal; {best} is first configured", False
        )

    def _describe(self, name: str, p: RouteRequest) -> str:
        r = self.window.rate(name, p.brand, p.country)
        if r.rate is None:
            return f"unknown, {r.attempts} attempts"
        return f"{r.rate:.0%} of {r.attempts}"

    def _scores(self, names: list[str], p: RouteRequest) -> dict[str, dict[str, Any]]:
        scores: dict[str, dict[str, Any]] = {}
        for name in names:
            r = self.window.rate(name, p.brand, p.country)
            scores[name] = {
                "fee": self._fee(name, p),
                "success_rate": None if r.rate is None else round(r.rate, 4),
                "attempts": r.attempts,
            }
        return scores
