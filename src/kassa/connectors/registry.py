"""Connectors built from configuration, by name, with the routing between them.

``ConnectorRegistry.from_configuration(load_configuration(...))`` is what a process holds for
its lifetime: one connector (one connection pool) per configured PSP account. It answers
``get(name)`` and ``route(currency, brand)``, the two questions the payment path asks."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from kassa.connectors.acquirer_a import ArvonaConnector
from kassa.connectors.acquirer_b import BeltraneConnector
from kassa.connectors.base import Connector
from kassa.connectors.configuration import ConnectorConfig, ConnectorsFile
from kassa.connectors.routing import Router

Factory = Callable[[ConnectorConfig, httpx.AsyncClient | None], Connector]

FACTORIES: dict[str, Factory] = {
    "acquirer_a": ArvonaConnector,
    "acquirer_b": BeltraneConnector,
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

    def route(self, currency: str, brand: str) -> list[str]:
        """Candidate connector names for a payment, best first (see ``routing.Router``)."""
        return self.router.route(currency, brand)

    async def close(self) -> None:
        """Close every connector's connection pool."""
        for connector in self._connectors.values():
            await connector.close()
