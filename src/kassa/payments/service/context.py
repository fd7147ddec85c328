"""What payment operations need beyond the request: the database and the PSPs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from kassa.connectors.base import Connector
from kassa.connectors.policy import Resilience
from kassa.connectors.routing import Decision, RouteRequest
from kassa.core.db import Connection, Database
from kassa.events import service as events


class ConnectorSet(Protocol):
    """The configured PSPs and the routing rule that picks among them."""

    def get(self, name: str) -> Connector: ...

    async def route(
        self, conn: Connection, merchant_id: str, livemode: bool, request: RouteRequest
    ) -> Decision: ...

    def record_outcome(
        self, connector: str, brand: str | None, country: str | None, outcome: str
    ) -> None: ...


@dataclass(frozen=True)
class Payments:
    db: Database
    connectors: ConnectorSet
    # Where shoppers' browsers reach this API (3-D Secure returns): KASSA_PUBLIC_URL.
    public_url: str = "http://127.0.0.1:8000"
    # Circuit breakers, error policy and retry budgets around authorisations (shared with
    # other processes through ``db``); None: the policy's code defaults, no breakers.
    resilience: Resilience | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Who caused a change, for the audit trail, events and the idempotency record."""

    merchant_id: str
    livemode: bool
    source: str  # api | psp_webhook | system
    request_id: str | None = None
    idempotency_key: str | None = None


async def emit(
    conn: Connection,
    origin: Origin,
    type: str,
    obj: dict[str, Any],
    previous_attributes: dict[str, Any] | None = None,
) -> None:
    """Write the event for a change in the change's own transaction (the outbox)."""
    await events.emit(
        conn,
        merchant_id=origin.merchant_id,
        livemode=origin.livemode,
        type=type,
        obj=obj,
        previous_attributes=previous_attributes,
        request_id=origin.request_id,
        idempotency_key=origin.idempotency_key,
    )


async def emit_all(
    conn: Connection, origin: Origin, changes: list[tuple[str, dict[str, Any]]]
) -> None:
    """Write the events of one change, each ``(type, object)``, in order and in one statement."""
    await events.emit_many(
        conn,
        merchant_id=origin.merchant_id,
        livemode=origin.livemode,
        events=[(type, obj, None) for type, obj in changes],
        request_id=origin.request_id,
        idempotency_key=origin.idempotency_key,
    )
