"""Routing: which PSP takes a payment (``engine``), the success-rate window it ranks by
(``window``), and merchants' rules stored in PostgreSQL (``service``, ``api``, ``cli``)."""

from kassa.connectors.routing.engine import Decision, Router, RouteRequest, matches
from kassa.connectors.routing.window import SuccessWindow

__all__ = ["Decision", "RouteRequest", "Router", "SuccessWindow", "matches"]
