"""Arvona Checkout (``acquirer_a``): JSON, asynchronous modifications, batched HMAC-signed
notifications. ``client`` speaks HTTP, ``mapper`` the wire format, ``webhooks`` the
notifications, ``connector`` puts them behind ``kassa.connectors.base.Connector``."""

from kassa.connectors.acquirer_a.connector import ArvonaConnector

__all__ = ["ArvonaConnector"]
