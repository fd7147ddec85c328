"""Writing an intent's status change: the state machine's check, the new row values and the
audit row, always together in the caller's transaction."""

from __future__ import annotations

from typing import Any

from kassa.core import clock
from kassa.core.db import Connection, Record
from kassa.payments import repository
from kassa.payments.service.context import Origin
from kassa.payments.states import IntentStatus, transition


async def move(
    conn: Connection,
    intent: Record,
    new: IntentStatus,
    origin: Origin,
    action: str,
    changes: dict[str, Any] | None = None,
) -> Record:
    """Move ``intent`` to ``new`` (refused unless the state machine allows it), applying
    ``changes`` in the same UPDATE and appending the audit row."""
    status = transition(intent["id"], intent["status"], new, action)
    row = await repository.update(
        conn,
        "payment_intents",
        origin.merchant_id,
        intent["id"],
        {**(changes or {}), "status": status.value},
    )
    await repository.insert_transition(
        conn,
        origin.merchant_id,
        intent["id"],
        intent["status"],
        status.value,
        origin.source,
        origin.request_id,
        clock.now(),
    )
    return row
