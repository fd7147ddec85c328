"""Which PSP takes a payment: an ordered list of rules ``(currencies?, brands?) → connector``
and a default, from configuration. ``route`` answers every candidate in order of preference;
the payment goes to the first, and the others are where a cascade would go next.

A candidate that cannot take the payment (its configured currencies or brands exclude it) is
left out, so a rule can never send a payment to a PSP that would refuse it outright."""

from __future__ import annotations

from collections.abc import Mapping

from kassa.connectors.configuration import ConnectorConfig, RoutingConfig, RoutingRule


class Router:
    """Routing rules evaluated in order; see the module docstring."""

    def __init__(
        self,
        rules: tuple[RoutingRule, ...] | list[RoutingRule],
        default: str | None = None,
        connectors: Mapping[str, ConnectorConfig] | None = None,
    ) -> None:
        """``connectors``, when given, lets ``route`` skip connectors that do not support the
        currency or brand (and names the only connectors rules may use)."""
        self.rules = tuple(rules)
        self.default = default
        self._connectors = connectors
        if connectors is not None:
            named = {r.connector for r in self.rules} | ({default} if default else set())
            unknown = sorted(named - set(connectors))
            if unknown:
                raise ValueError(f"routing names unknown connectors: {unknown}")

    @classmethod
    def from_config(
        cls, config: RoutingConfig, connectors: Mapping[str, ConnectorConfig] | None = None
    ) -> Router:
        """A router for the ``routing`` section of the connectors configuration."""
        return cls(config.rules, config.default, connectors)

    def route(self, currency: str, brand: str) -> list[str]:
        """Connector names for a ``brand`` card payment in ``currency``, best first: every
        matching rule's connector in rule order, then the default; each name once. Empty when
        nothing can take the payment."""
        names = [r.connector for r in self.rules if r.matches(currency, brand)]
        if self.default is not None:
            names.append(self.default)
        candidates: list[str] = []
        for name in names:
            if name in candidates:
                continue
            config = self._connectors.get(name) if self._connectors is not None else None
            if config is not None and not config.supports(currency, brand):
                continue
            candidates.append(name)
        return candidates
