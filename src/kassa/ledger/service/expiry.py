"""The timeout job's work: void pending transfers whose timeout has passed."""

from __future__ import annotations

from itertools import groupby

from kassa.core.db import Database
from kassa.ledger import repository
from kassa.ledger.model import EXPIRE, VOID_PENDING, Batch, Result, Transfer
from kassa.ledger.service.posting import now_us, post_transfers


def expiry_id(pending_id: str) -> str:
    return f"{pending_id}:expired"


async def void_expired_pending(
    db: Database, *, limit: int = 1000, merchant_id: str | None = None
) -> int:
    """Release the holds of pending transfers past their timeout: each gets a void transfer
    (``<pending id>:expired``); posting or voiding it afterwards answers
    ``pending_transfer_expired``. One transaction per merchant and mode. Returns how many
    were voided (a hold resolved meanwhile by its owner is skipped). ``merchant_id`` limits
    the sweep to one merchant."""
    now = now_us()
    async with db.connection() as conn:
        due = await repository.due_timeouts(conn, now, limit, merchant_id)
    voided = 0
    for (merchant_id, livemode), rows in groupby(
        due, key=lambda r: (r["merchant_id"], r["livemode"])
    ):
        transfers = [
            Transfer(
                expiry_id(r["pending_id"]),
                None,
                None,
                None,
                None,
                None,
                VOID_PENDING | EXPIRE,
                r["pending_id"],
            )
            for r in rows
        ]
        results = await post_transfers(db, Batch(merchant_id, livemode, transfers))
        voided += sum(1 for r in results if r.result is Result.OK)
    return voided
