"""``/v1/events`` routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.events import service
from kassa.events.schemas import EventList, EventRetrieve

router = StripeRouter("/v1/events", resource="events", tag="events")


@router.get("", query=EventList)
async def list_(request: Request, c: Caller) -> dict[str, Any]:
    """List events, newest first."""
    return await service.list_events(request.app.state.db, c, parse(EventList, c.params))


@router.get("/{event_id}", query=EventRetrieve)
async def retrieve(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve an event."""
    parse(EventRetrieve, c.params)
    return await service.retrieve_event(request.app.state.db, c, request.path_params["event_id"])
