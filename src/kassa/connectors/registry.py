"""Connectors built from configuration, by name, with the routing between them.

``ConnectorRegistry.from_configuration(load_configuration(...))`` is what a process holds for
its lifetime: one connector (one connection pool) per configured PSP account. It answers
``get(name)`` and ``route(...)``, the two questions the payment path asks, and hears each
settled attempt's outcome (``record_outcome``) for success-rate routing."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from kassa.connectors.acquirer_a import ArvonaConnector
from kassa.connectors.acquirer_b import BeltraneConnector
from kassa.connectors.bank import BankConnector
from kassa.connectors.base import Connector, MethodConnector
from kassa.connectors.bnpl import BnplConnector
from kassa.connectors.configuration import ConnectorConfig, ConnectorsFile
from kassa.connectors.routing import Decision, Router, RouteRequest
from kassa.connectors.routing import service as routing_rules
from kassa.connectors.wallet import WalletConnector
from kassa.core.db import Connection

Factory = Callable[[ConnectorConfig, httpx.AsyncClient | None], Connector]

FACTORIES: dict[str, Factory] = {
    "acquirer_a": ArvonaConnector,
    "acquirer_b": BeltraneConnector,
    "bank": BankConnector,
    "wallet": WalletConnector,
    "bnpl": BnplConnector,
}


class UnknownConnector(LookupError):
    """No connector of that name is configured."""


def build_connector(config: ConnectorConfig, client: httpx.AsyncClient | None = None) -> Connector:
    """The adapter for ``config.kind``; ``client`` is a connection pool to share (the
    connector then leaves closing it to the caller)."""
    return FACTORIES[config.kind](config, client)


class ConnectorRegistry:
    """Every configured connector by name, and the router that picks among them."""

    def __init__(
        self,
        connectors: Mapping[str, Connector],
        router: Router,
        configs: Mapping[str, ConnectorConfig] | None = None,
    ) -> None:
        self._connectors = dict(connectors)
        self.router = router
        self._configs = dict(configs or {})

    @classmethod
    def from_configuration(cls, configuration: ConnectorsFile) -> ConnectorRegistry:
        """Build every connector and the router from a validated configuration."""
        configs = {c.name: c for c in configuration.connectors}
        connectors = {name: build_connector(c) for name, c in configs.items()}
        return cls(connectors, Router.from_config(configuration.routing, configs), configs)

    @property
    def names(self) -> list[str]:
        """The configured connectors' names, in configuration order."""
        return list(self._connectors)

    def get(self, name: str) -> Connector:
        """The connector called ``name`` (``UnknownConnector`` if there is none)."""
        try:
            return self._connectors[name]
        except KeyError:
            raise UnknownConnector(f"no connector named {name!r}") from None

    def config(self, name: str) -> ConnectorConfig:
        """The configuration ``name`` was built from (fees, currencies, settlement days…)."""
        try:
            return self._configs[name]
        except KeyError:
            raise UnknownConnector(f"no connector named {name!r}") from None

    @property
    def configs(self) -> Mapping[str, ConnectorConfig]:
        """Every connector's configuration by name (what routing rules are checked against)."""
        return dict(self._configs)

    async def route(
        self, conn: Connection, merchant_id: str, livemode: bool, request: RouteRequest
    ) -> Decision:
        """Where a payment goes and why (``routing.engine``): the merchant's rules, read on
        ``conn``, then platform routing."""
        rules = await routing_rules.rules_for(conn, merchant_id, livemode)
        return self.router.route(request, rules)

    def record_outcome(
        self, connector: str, brand: str | None, country: str | None, outcome: str
    ) -> None:
        """Feed a settled attempt's outcome to success-rate routing (this process's window)."""
        self.router.record_outcome(connector, brand, country, outcome)

    def method_connectors(self, payment_method_type: str, currency: str) -> list[str]:
        """Connectors taking an asynchronous payment method (``us_bank_account``, ``paypal``…)
        in ``currency``, in configuration order: card routing never offers these."""
        return [
            name
            for name, c in self._connectors.items()
            if isinstance(c, MethodConnector)
            and payment_method_type in c.payment_method_types
            and currency.lower() in c.currencies
        ]

    async def close(self) -> None:
        """Close every connector's connection pool."""
        for connector in self._connectors.values():
            await connector.close()
