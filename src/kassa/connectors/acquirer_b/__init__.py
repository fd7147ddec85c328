"""Beltrane Gateway (``acquirer_b``): form-encoded name-value pairs, numeric RESULT codes,
decimal amounts, synchronous follow-ups and signed silent posts. ``client`` speaks HTTP,
``mapper`` the wire format, ``webhooks`` the notifications, ``connector`` puts them behind
``kassa.connectors.base.Connector``."""

from kassa.connectors.acquirer_b.connector import BeltraneConnector

__all__ = ["BeltraneConnector"]
