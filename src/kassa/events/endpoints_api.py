"""``/v1/webhook_endpoints`` routes, with Kassa's delivery log and dead-letter replay."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from kassa.core.http.context import Caller
from kassa.core.http.params import parse
from kassa.core.http.routing import StripeRouter
from kassa.events.schemas import (
    AttemptList,
    DeliveryList,
    EndpointCreate,
    EndpointDelete,
    EndpointList,
    EndpointRetrieve,
    EndpointUpdate,
    ReplayDeadLetters,
    RotateSecret,
)
from kassa.events.service import endpoints as service

router = StripeRouter("/v1/webhook_endpoints", resource="webhook_endpoints", tag="webhooks")


@router.post("", body=EndpointCreate)
async def create(request: Request, c: Caller) -> dict[str, Any]:
    """Create a webhook endpoint (its secret is shown only in this response)."""
    return await service.create_endpoint(request.app.state.db, c, parse(EndpointCreate, c.params))


@router.get("", query=EndpointList)
async def list_(request: Request, c: Caller) -> dict[str, Any]:
    """List webhook endpoints, newest first."""
    return await service.list_endpoints(request.app.state.db, c, parse(EndpointList, c.params))


@router.get("/{endpoint_id}", query=EndpointRetrieve)
async def retrieve(request: Request, c: Caller) -> dict[str, Any]:
    """Retrieve a webhook endpoint."""
    parse(EndpointRetrieve, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.retrieve_endpoint(request.app.state.db, c, endpoint_id)


@router.post("/{endpoint_id}", body=EndpointUpdate)
async def update(request: Request, c: Caller) -> dict[str, Any]:
    """Update a webhook endpoint."""
    params = parse(EndpointUpdate, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.update_endpoint(request.app.state.db, c, endpoint_id, params)


@router.delete("/{endpoint_id}")
async def delete(request: Request, c: Caller) -> dict[str, Any]:
    """Delete a webhook endpoint."""
    parse(EndpointDelete, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.delete_endpoint(request.app.state.db, c, endpoint_id)


@router.post("/{endpoint_id}/rotate_secret", body=RotateSecret)
async def rotate_secret(request: Request, c: Caller) -> dict[str, Any]:
    """Roll the signing secret; the old one keeps signing for `expires_in` seconds."""
    params = parse(RotateSecret, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.rotate_secret(request.app.state.db, c, endpoint_id, params)


@router.post("/{endpoint_id}/replay", body=ReplayDeadLetters)
async def replay(request: Request, c: Caller) -> dict[str, Any]:
    """Queue the endpoint's dead letters for delivery again."""
    parse(ReplayDeadLetters, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.replay_dead_letters(request.app.state.db, c, endpoint_id)


@router.get("/{endpoint_id}/deliveries", query=DeliveryList)
async def deliveries(request: Request, c: Caller) -> dict[str, Any]:
    """List the endpoint's deliveries (one per event) with their retry state."""
    params = parse(DeliveryList, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.list_deliveries(request.app.state.db, c, endpoint_id, params)


@router.get("/{endpoint_id}/delivery_attempts", query=AttemptList)
async def delivery_attempts(request: Request, c: Caller) -> dict[str, Any]:
    """The endpoint's delivery log: one entry per attempt."""
    params = parse(AttemptList, c.params)
    endpoint_id = request.path_params["endpoint_id"]
    return await service.list_attempts(request.app.state.db, c, endpoint_id, params)
