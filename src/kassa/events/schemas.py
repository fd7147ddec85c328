"""Event parameters and the Stripe ``event`` object."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator

from kassa.core.http.pagination import Created, ListParams
from kassa.core.http.params import Expand, Params

API_VERSION = "2024-06-20"
_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$")


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


def event_object(row: Any, pending_webhooks: int = 0) -> dict[str, Any]:
    """The ``event`` object as Stripe delivers and lists it."""
    return {
        "id": row["id"],
        "object": "event",
        "api_version": row["api_version"],
        "created": int(row["created_at"].timestamp()),
        "data": row["data"],
        "livemode": row["livemode"],
        "pending_webhooks": pending_webhooks,
        "request": {"id": row["request_id"], "idempotency_key": row["idempotency_key"]},
        "type": row["type"],
    }
