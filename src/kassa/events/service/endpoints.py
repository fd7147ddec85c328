"""Webhook endpoints: create, read, update, delete, list, rotate the signing secret; replay of
dead letters and of single events; the delivery log; disabling endpoints that keep failing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kassa.config import get_settings
from kassa.core import clock
from kassa.core.db import Connection, Database, Record
from kassa.core.errors import InvalidRequest, ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http import idempotency
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.core.http.params import merge_metadata
from kassa.core.ids import new_id
from kassa.events import metrics, repository
from kassa.events.schemas import (
    AttemptList,
    DeliveryList,
    EndpointCreate,
    EndpointList,
    EndpointUpdate,
    EventRetry,
    RotateSecret,
    attempt_object,
    deleted_endpoint,
    delivery_object,
    endpoint_object,
    event_object,
)
from kassa.events.service import outbox, signing, transport

# Stripe's limit on endpoints per account and mode.
MAX_ENDPOINTS = 16


def _check_reachable(url: str, livemode: bool) -> None:
    host = urlsplit(url).hostname or ""
    try:
        transport.check_address(
            host, livemode=livemode, allow_private=get_settings().webhooks_allow_private
        )
    except transport.Blocked:
        raise InvalidRequest(
            f"Invalid URL: {host} is not a public address; live mode endpoints must be "
            "reachable on the public internet.",
            param="url",
        ) from None


async def _endpoint(conn: Connection, caller: Caller, endpoint_id: str, **kw: Any) -> Record:
    row = await repository.get_endpoint(
        conn, caller.merchant_id, caller.livemode, endpoint_id, **kw
    )
    if row is None:
        raise ResourceMissing("webhook_endpoint", endpoint_id)
    return row


async def create_endpoint(db: Database, caller: Caller, params: EndpointCreate) -> dict[str, Any]:
    """Create an endpoint; the response is the only time its ``secret`` is shown (the stored
    idempotent response leaves it out: a replay does not reveal it again)."""
    expansion.validate("webhook_endpoint", params.expand)
    _check_reachable(params.url, caller.livemode)
    endpoint_id = new_id("we")
    secret = signing.new_secret()
    wrapped, sealed = signing.seal(endpoint_id, [signing.Secret(secret, None)])
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        if await repository.count_endpoints(conn, caller.merchant_id, caller.livemode) >= (
            MAX_ENDPOINTS
        ):
            raise InvalidRequest(
                f"You have reached the maximum of {MAX_ENDPOINTS} webhook endpoints.",
                param="url",
            )
        row = await repository.insert_endpoint(
            conn,
            merchant_id=caller.merchant_id,
            id=endpoint_id,
            livemode=caller.livemode,
            url=params.url,
            enabled_events=list(params.enabled_events),
            description=params.description,
            metadata=merge_metadata({}, params.metadata, "metadata" in params.model_fields_set),
            api_version=params.api_version,
            secrets_key=wrapped,
            secrets=sealed,
            created_at=clock.now(),
        )
        await idempotency.store_response(conn, caller.idempotency, 200, endpoint_object(row))
    return endpoint_object(row, secret)


async def retrieve_endpoint(db: Database, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    async with db.connection() as conn:
        return endpoint_object(await _endpoint(conn, caller, endpoint_id))


async def list_endpoints(db: Database, caller: Caller, params: EndpointList) -> dict[str, Any]:
    expansion.validate("webhook_endpoint", params.expand, is_list=True)
    async with db.connection() as conn:
        rows = await repository.list_endpoints(conn, caller.merchant_id, caller.livemode, params)
    page, has_more = params.page(rows)
    return list_object("/v1/webhook_endpoints", page, has_more, endpoint_object)


async def update_endpoint(
    db: Database, caller: Caller, endpoint_id: str, params: EndpointUpdate
) -> dict[str, Any]:
    """Update the given fields. ``disabled=true`` stops deliveries (pending ones become dead
    letters, replayable once it is enabled again); ``disabled=false`` re-enables it."""
    expansion.validate("webhook_endpoint", params.expand)
    given = params.model_fields_set
    if params.url is not None:
        _check_reachable(params.url, caller.livemode)
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await _endpoint(conn, caller, endpoint_id, for_update=True)
        status, reason, failing_since = (
            row["status"],
            row["disabled_reason"],
            row["failing_since"],
        )
        dead = 0
        if params.disabled is True and status == "enabled":
            status, reason = "disabled", "disabled_by_merchant"
            dead = await repository.end_pending_deliveries(
                conn, caller.merchant_id, endpoint_id, "dead", "endpoint_disabled"
            )
        elif params.disabled is False and status == "disabled":
            status, reason, failing_since = "enabled", None, None
        row = await repository.update_endpoint(
            conn,
            caller.merchant_id,
            endpoint_id,
            url=params.url or row["url"],
            enabled_events=list(params.enabled_events or row["enabled_events"]),
            description=params.description if "description" in given else row["description"],
            metadata=merge_metadata(row["metadata"], params.metadata, "metadata" in given),
            status=status,
            disabled_reason=reason,
            failing_since=failing_since,
        )
        obj = endpoint_object(row)
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    metrics.DEAD_LETTERED.labels("endpoint_disabled").inc(dead)
    return obj


async def delete_endpoint(db: Database, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    """Delete an endpoint: its secrets are erased and its pending deliveries canceled."""
    async with db.transaction() as conn:
        await _endpoint(conn, caller, endpoint_id, for_update=True)
        await repository.end_pending_deliveries(
            conn, caller.merchant_id, endpoint_id, "canceled", None
        )
        await repository.mark_endpoint_deleted(conn, caller.merchant_id, endpoint_id, clock.now())
    return deleted_endpoint(endpoint_id)


async def _rotate(conn: Connection, row: Record, expires_in: int) -> tuple[str, Record]:
    now = clock.timestamp()
    current = signing.unseal(row["id"], bytes(row["secrets_key"]), bytes(row["secrets"]))
    fresh, kept = signing.rotate(current, now, expires_in)
    wrapped, sealed = signing.seal(row["id"], kept)
    updated = await repository.update_endpoint_secrets(
        conn, row["merchant_id"], row["id"], wrapped, sealed
    )
    return fresh, updated


async def rotate_secret(
    db: Database, caller: Caller, endpoint_id: str, params: RotateSecret
) -> dict[str, Any]:
    """Issue a new signing secret (returned once); the previous one keeps signing, as a second
    ``v1`` signature, for ``expires_in`` seconds so receivers can switch without losing any."""
    expansion.validate("webhook_endpoint", params.expand)
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await _endpoint(conn, caller, endpoint_id, for_update=True)
        secret, row = await _rotate(conn, row, params.expires_in)
        await idempotency.store_response(conn, caller.idempotency, 200, endpoint_object(row))
    return endpoint_object(row, secret)


async def rotate_secret_by_id(db: Database, endpoint_id: str, expires_in: int) -> dict[str, Any]:
    """``rotate_secret`` for operators (``kassa webhooks rotate-secret``)."""
    async with db.transaction() as conn:
        row = await repository.find_endpoint(conn, endpoint_id)
        if row is None:
            raise ResourceMissing("webhook_endpoint", endpoint_id)
        secret, row = await _rotate(conn, row, expires_in)
    return endpoint_object(row, secret)


async def _replay_dead(conn: Connection, row: Record) -> int:
    if row["status"] != "enabled":
        raise InvalidRequest(
            "This webhook endpoint is disabled; enable it before replaying its dead letters.",
            param="id",
        )
    return await repository.replay_dead(conn, row["merchant_id"], row["id"], clock.now())


async def replay_dead_letters(db: Database, caller: Caller, endpoint_id: str) -> dict[str, Any]:
    """Queue every dead letter (and parked delivery) of the endpoint again, each with a fresh
    3-day retry window."""
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        row = await _endpoint(conn, caller, endpoint_id, for_update=True)
        n = await _replay_dead(conn, row)
        obj = {"object": "webhook_replay", "webhook_endpoint": endpoint_id, "replayed": n}
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return obj


async def _retry(
    conn: Connection, merchant_id: str, livemode: bool, event: Record, endpoint_ids: list[str]
) -> int:
    deliveries = [
        {
            "merchant_id": merchant_id,
            "id": new_id("whd"),
            "endpoint_id": e,
            "event_id": event["id"],
            "livemode": livemode,
            "event_type": event["type"],
        }
        for e in endpoint_ids
    ]
    return await repository.retry_event(conn, deliveries, clock.now())


async def retry_event(
    db: Database, caller: Caller, event_id: str, params: EventRetry
) -> dict[str, Any]:
    """Deliver an event again: to ``webhook_endpoint`` if given, else to every enabled endpoint
    subscribed to its type. Receivers see the same event id again (they deduplicate by it)."""
    expansion.validate("event", params.expand)
    async with db.transaction() as conn:
        await idempotency.claim(conn, caller.idempotency)
        event = await repository.get(conn, caller.merchant_id, caller.livemode, event_id)
        if event is None:
            raise ResourceMissing("event", event_id)
        if params.webhook_endpoint:
            target = await repository.get_endpoint(
                conn, caller.merchant_id, caller.livemode, params.webhook_endpoint
            )
            if target is None:
                raise ResourceMissing(
                    "webhook_endpoint", params.webhook_endpoint, param="webhook_endpoint"
                )
            if target["status"] != "enabled":
                raise InvalidRequest("This webhook endpoint is disabled.", param="webhook_endpoint")
            targets = [target["id"]]
        else:
            targets = await repository.subscribed_endpoints(
                conn, caller.merchant_id, caller.livemode, event["type"]
            )
            if not targets:
                raise InvalidRequest(
                    "No enabled webhook endpoint is subscribed to this event's type.",
                    param="webhook_endpoint",
                )
        await _retry(conn, caller.merchant_id, caller.livemode, event, targets)
        obj = event_object(
            await repository.get(conn, caller.merchant_id, caller.livemode, event_id)
        )
        await idempotency.store_response(conn, caller.idempotency, 200, obj)
    return obj


async def replay_by_id(db: Database, endpoint_id: str, event_id: str | None = None) -> int:
    """Operators' replay (``kassa webhooks replay``): the endpoint's dead letters, or with
    ``event_id`` that one event to it. Returns the deliveries queued."""
    async with db.transaction() as conn:
        row = await repository.find_endpoint(conn, endpoint_id)
        if row is None:
            raise ResourceMissing("webhook_endpoint", endpoint_id)
        if event_id is None:
            return await _replay_dead(conn, row)
        event = await repository.get(conn, row["merchant_id"], row["livemode"], event_id)
        if event is None:
            raise ResourceMissing("event", event_id)
        if row["status"] != "enabled":
            raise InvalidRequest("This webhook endpoint is disabled.", param="id")
        return await _retry(conn, row["merchant_id"], row["livemode"], event, [endpoint_id])


async def list_deliveries(
    db: Database, caller: Caller, endpoint_id: str, params: DeliveryList
) -> dict[str, Any]:
    """The endpoint's deliveries (one per event), newest first; ``status=dead`` lists its
    dead letters."""
    expansion.validate("webhook_delivery", params.expand, is_list=True)
    async with db.connection() as conn:
        await _endpoint(conn, caller, endpoint_id)
        rows = await repository.list_deliveries(
            conn,
            caller.merchant_id,
            endpoint_id,
            params,
            status=params.status,
            event_id=params.event,
        )
    page, has_more = params.page(rows)
    url = f"/v1/webhook_endpoints/{endpoint_id}/deliveries"
    return list_object(url, page, has_more, delivery_object)


async def list_attempts(
    db: Database, caller: Caller, endpoint_id: str, params: AttemptList
) -> dict[str, Any]:
    """The endpoint's delivery log: every attempt with its status code, latency, the first
    kilobyte of the answer and any error, newest first."""
    expansion.validate("webhook_delivery_attempt", params.expand, is_list=True)
    async with db.connection() as conn:
        await _endpoint(conn, caller, endpoint_id)
        rows = await repository.list_attempts(
            conn,
            caller.merchant_id,
            endpoint_id,
            params,
            event_id=params.event,
            delivery_id=params.delivery,
        )
    page, has_more = params.page(rows)
    url = f"/v1/webhook_endpoints/{endpoint_id}/delivery_attempts"
    return list_object(url, page, has_more, attempt_object)


async def disable_failing(db: Database, merchant_id: str, endpoint_id: str) -> bool:
    """Disable an endpoint that has failed for ``webhook_disable_after_days``: its pending
    deliveries become dead letters and the merchant gets a ``webhook_endpoint.disabled``
    event (delivered to its other endpoints), all in one transaction."""
    async with db.transaction() as conn:
        row = await repository.disable_endpoint(conn, merchant_id, endpoint_id, "failing")
        if row is None:
            return False
        n = await repository.end_pending_deliveries(
            conn, merchant_id, endpoint_id, "dead", "endpoint_disabled"
        )
        await outbox.emit(
            conn,
            merchant_id=merchant_id,
            livemode=row["livemode"],
            type="webhook_endpoint.disabled",
            obj=endpoint_object(row),
        )
    metrics.DEAD_LETTERED.labels("endpoint_disabled").inc(n)
    return True
