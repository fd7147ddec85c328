"""The outbox. Every state change calls ``emit`` inside its own transaction, so an event exists
if and only if the change committed; the webhook dispatcher and the relays read from here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from kassa.core import clock
from kassa.core.db import Connection, Database
from kassa.core.errors import ResourceMissing
from kassa.core.http import expand as expansion
from kassa.core.http.context import Caller
from kassa.core.http.pagination import list_object
from kassa.core.ids import new_id
from kassa.events import repository
from kassa.events.schemas import API_VERSION, EventList, event_object

RETENTION = timedelta(days=30)


async def emit(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    type: str,
    obj: dict[str, Any],
    previous_attributes: dict[str, Any] | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Record an event about ``obj`` (a snapshot) in ``conn``'s transaction; returns its id.

    One statement: the event row and its outbox entries. Moves no money; it is the record that
    merchants' systems will be told about."""
    [event_id] = await emit_many(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        events=[(type, obj, previous_attributes)],
        request_id=request_id,
        idempotency_key=idempotency_key,
    )
    return event_id


async def emit_many(
    conn: Connection,
    *,
    merchant_id: str,
    livemode: bool,
    events: Sequence[tuple[str, dict[str, Any], dict[str, Any] | None]],
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> list[str]:
    """Record the events of one change, each ``(type, object snapshot, previous attributes)``,
    in order and in one statement (see ``emit``); returns their ids."""
    rows = []
    for type, obj, previous_attributes in events:
        data: dict[str, Any] = {"object": obj}
        if previous_attributes:
            data["previous_attributes"] = previous_attributes
        rows.append(repository.EventRow(new_id("evt"), type, clock.now(), obj.get("id"), data))
    await repository.insert(
        conn,
        merchant_id=merchant_id,
        livemode=livemode,
        api_version=API_VERSION,
        request_id=request_id,
        idempotency_key=idempotency_key,
        events=rows,
    )
    return [row.id for row in rows]


async def retrieve_event(db: Database, caller: Caller, event_id: str) -> dict[str, Any]:
    """One event with its current ``pending_webhooks``."""
    async with db.connection() as conn:
        row = await repository.get(conn, caller.merchant_id, caller.livemode, event_id)
    if row is None:
        raise ResourceMissing("event", event_id)
    return event_object(row)


async def list_events(db: Database, caller: Caller, params: EventList) -> dict[str, Any]:
    """Events newest first; ``type`` may end in ``.*`` as Stripe allows (``charge.*``)."""
    expansion.validate("event", params.expand, is_list=True)
    types = list(params.types or [])
    prefix = None
    if params.type and params.type.endswith(".*"):
        prefix = params.type[:-1]
    elif params.type:
        types.append(params.type)
    async with db.connection() as conn:
        rows = await repository.list_page(
            conn,
            caller.merchant_id,
            caller.livemode,
            params,
            types=types or None,
            type_prefix=prefix,
            created=params.created,
        )
    page, has_more = params.page(rows)
    return list_object("/v1/events", page, has_more, event_object)


async def prune(db: Database) -> int:
    """Delete events, finished deliveries and log entries older than the 30-day retention;
    returns how many events."""
    before = clock.now() - RETENTION
    async with db.transaction() as conn:
        n = await repository.delete_older_than(conn, before)
        await repository.delete_deliveries_older_than(conn, before)
    return n


async def register_consumer(db: Database, name: str, *, backfill: bool = False) -> bool:
    """Start queueing every new event for the outbox consumer ``name`` (a relay); with
    ``backfill``, a new consumer also gets every retained event. True when it is new."""
    async with db.transaction() as conn:
        added = await repository.register_consumer(conn, name, clock.now())
        if added and backfill:
            await repository.backfill_consumer(conn, name)
    return added


async def unregister_consumer(db: Database, name: str) -> None:
    """Stop queueing events for ``name`` and drop what it had not taken yet."""
    if name == repository.WEBHOOKS_CONSUMER:
        raise ValueError("the webhooks consumer cannot be removed")
    async with db.transaction() as conn:
        await repository.unregister_consumer(conn, name)
