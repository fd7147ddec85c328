"""Parameters and API objects of the events domain: ``event``, ``webhook_endpoint`` and
Kassa's ``webhook_delivery`` / ``webhook_delivery_attempt`` log objects."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from kassa.core.http.pagination import Created, ListParams
from kassa.core.http.params import Expand, Metadata, OptionalStr, Params
from kassa.events.types import WILDCARD, is_known

API_VERSION = "2024-06-20"
_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$")
MAX_URL_LENGTH = 2048
ResourceId = Annotated[str, Field(min_length=1, max_length=255)]


class EventList(ListParams):
    type: str | None = Field(default=None, max_length=100)
    types: list[Annotated[str, Field(pattern=r"^[a-z_]+(\.[a-z_]+)+$", max_length=100)]] | None = (
        Field(default=None, max_length=20)
    )
    created: Created = None

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and not _TYPE.match(value):
            raise ValueError("not an event type")
        return value


class EventRetrieve(Params):
    expand: Expand


class EventRetry(Params):
    """``POST /v1/events/{id}/retry``: deliver the event again, to one endpoint or to every
    enabled endpoint subscribed to its type."""

    webhook_endpoint: OptionalStr = Field(default=None, max_length=255)
    expand: Expand


def event_object(row: Any) -> dict[str, Any]:
    """The ``event`` object as Stripe delivers and lists it."""
    pending = row["pending_webhooks"] if "pending_webhooks" in row.keys() else 0  # noqa: SIM118
    return {
        "id": row["id"],
        "object": "event",
        "api_version": row["api_version"],
        "created": int(row["created_at"].timestamp()),
        "data": row["data"],
        "livemode": row["livemode"],
        "pending_webhooks": pending,
        "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
        "type": row["type"],
    }


# --- webhook endpoints -----------------------------------------------------------------------


def check_url(value: str) -> str:
    """An absolute http(s) URL with a host; anything else is a 400 on ``url``."""
    if len(value) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("must be an http or https URL")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError("must be an http or https URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials")
    if port == 0:
        raise ValueError("must have a valid port")
    return value


def _check_events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = [t for t in value if not is_known(t)]
    if unknown:
        raise ValueError(f"unknown event type {unknown[0][:100]!r} (see docs/webhooks.md)")
    if WILDCARD in value and len(set(value)) > 1:
        raise ValueError("'*' must be the only entry when given")
    return list(dict.fromkeys(value))


EnabledEvents = Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=100)]
ApiVersion = Annotated[
    str | None, Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$", max_length=40)
]


class EndpointCreate(Params):
    url: str = Field(max_length=MAX_URL_LENGTH)
    enabled_events: EnabledEvents = Field(min_length=1)
    description: OptionalStr = Field(default=None, max_length=5000)
    metadata: Metadata = None
    api_version: ApiVersion = None
    expand: Expand

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str] | None:
        return _check_events(value)


class EndpointUpdate(Params):
    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    enabled_events: EnabledEvents | None = Field(default=None, min_length=1)
    description: OptionalStr = Field(default=None, max_length=5000)
    metadata: Metadata = None
    disabled: bool | None = None
    expand: Expand

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return _check_events(value)


class EndpointRetrieve(Params):
    expand: Expand


class EndpointDelete(Params):
    pass


class EndpointList(ListParams):
    pass


class RotateSecret(Params):
    """``expires_in``: seconds the previous secret keeps signing (both ``v1`` signatures are
    sent meanwhile); 0 retires it at once. At most 7 days."""

    expires_in: int = Field(default=86400, ge=0, le=7 * 86400)
    expand: Expand


class ReplayDeadLetters(Params):
    expand: Expand


DeliveryStatus = Literal["pending", "succeeded", "dead", "parked", "canceled"]


class DeliveryList(ListParams):
    status: DeliveryStatus | None = None
    event: str | None = Field(default=None, max_length=255)


class AttemptList(ListParams):
    event: str | None = Field(default=None, max_length=255)
    delivery: str | None = Field(default=None, max_length=255)


def endpoint_object(row: Any, secret: str | None = None) -> dict[str, Any]:
    """The ``webhook_endpoint`` object; ``secret`` only on create and rotation."""
    obj: dict[str, Any] = {
        "id": row["id"],
        "object": "webhook_endpoint",
        "api_version": row["api_version"],
        "application": None,
        "created": int(row["created_at"].timestamp()),
        "description": row["description"],
        "disabled_reason": row["disabled_reason"],
        "enabled_events": list(row["enabled_events"]),
        "livemode": row["livemode"],
        "metadata": row["metadata"],
        "status": row["status"],
        "url": row["url"],
    }
    if secret is not None:
        obj["secret"] = secret
    return obj


def deleted_endpoint(endpoint_id: str) -> dict[str, Any]:
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def _ts(value: Any) -> int | None:
    return None if value is None else int(value.timestamp())


def delivery_object(row: Any) -> dict[str, Any]:
    """One event owed to one endpoint, with its state in the retry schedule."""
    return {
        "id": row["id"],
        "object": "webhook_delivery",
        "attempt_count": row["attempt_count"],
        "created": _ts(row["created_at"]),
        "dead_reason": row["dead_reason"],
        "delivered": _ts(row["delivered_at"]),
        "event": row["event_id"],
        "event_type": row["event_type"],
        "last_error": row["last_error"],
        "last_response_status": row["last_status_code"],
        "livemode": row["livemode"],
        "next_attempt": _ts(row["next_attempt_at"]) if row["status"] == "pending" else None,
        "status": row["status"],
        "webhook_endpoint": row["endpoint_id"],
    }


def attempt_object(row: Any) -> dict[str, Any]:
    """One entry of an endpoint's delivery log."""
    return {
        "id": row["id"],
        "object": "webhook_delivery_attempt",
        "attempt": row["attempt"],
        "created": _ts(row["created_at"]),
        "delivery": row["delivery_id"],
        "error": row["error"],
        "event": row["event_id"],
        "latency_ms": row["latency_ms"],
        "livemode": row["livemode"],
        "response_body": row["response_body"],
        "response_status": row["status_code"],
        "succeeded": row["succeeded"],
        "webhook_endpoint": row["endpoint_id"],
    }
