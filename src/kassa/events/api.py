"""``/v1/events`` routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.events import service
from kassa.events.schemas import EventList, EventRetrieve, EventRetry
from kassa.events.service import endpoints

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


@router.post("/{event_id}/retry", body=EventRetry)
async def retry(request: Request, c: Caller) -> dict[str, Any]:
    """Deliver an event to webhook endpoints again (Kassa extension)."""
    params = parse(EventRetry, c.params)
    event_id = request.path_params["event_id"]
    return await endpoints.retry_event(request.app.state.db, c, event_id, params)
