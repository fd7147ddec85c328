"""Posting batches of transfers: one database round trip per batch."""

from __future__ import annotations

from typing import Any

from kassa.core import clock
from kassa.core.db import Connection, Database
from kassa.ledger import repository
from kassa.ledger.errors import TransferRejected
from kassa.ledger.model import Batch, Result, Transfer, TransferResult

# TigerBeetle's request limit is 8,189 transfers; ours is a little larger and round.
MAX_BATCH = 10_000


def now_us() -> int:
    """Ledger time from the injectable clock, in unix microseconds."""
    return round(clock.now().timestamp() * 1_000_000)


def _columns(transfers: list[Transfer]) -> tuple[list[Any], ...]:
    for t in transfers:
        if isinstance(t.amount, bool) or not (t.amount is None or isinstance(t.amount, int)):
            raise TypeError(f"transfer {t.id!r}: amount must be an int in minor units")
    return (
        [t.id for t in transfers],
        [t.debit_account_id for t in transfers],
        [t.credit_account_id for t in transfers],
        [t.amount for t in transfers],
        [t.currency.lower() if t.currency else t.currency for t in transfers],
        [t.flags for t in transfers],
        [t.pending_id for t in transfers],
        [t.timeout for t in transfers],
        [t.code for t in transfers],
        [t.journal_id for t in transfers],
        [t.metadata for t in transfers],
    )


async def post_transfers_in(
    conn: Connection, batch: Batch, *, sequential: bool = False
) -> list[TransferResult]:
    """Post ``batch`` inside the caller's transaction (which must be READ COMMITTED), so a
    domain commits its state change, its ledger transfers and its events together.

    Moves money as the transfers say, each one checked in batch order: a transfer that fails
    moves nothing, a failed linked chain moves nothing, ``exists`` moves nothing again. Row
    locks on the touched accounts are held until the caller commits; post all of one
    transaction's transfers in one call (locks are taken in sorted order within a call only).
    ``sequential`` skips the set-based fast path (tests compare both)."""
    transfers = list(batch.transfers)
    if len(transfers) > MAX_BATCH:
        raise ValueError(f"a batch holds at most {MAX_BATCH} transfers")
    if not transfers:
        return []
    codes, stamps = await repository.post(
        conn,
        batch.merchant_id,
        batch.livemode,
        now_us(),
        _columns(transfers),
        1 if sequential else 0,
    )
    return [
        TransferResult(t.id, Result(code) if code else Result.OK, ts)
        for t, code, ts in zip(transfers, codes, stamps, strict=True)
    ]


async def post_transfers(
    db: Database, batch: Batch, *, sequential: bool = False
) -> list[TransferResult]:
    """Post ``batch`` in its own transaction and commit: see ``post_transfers_in``."""
    async with db.transaction() as conn:
        return await post_transfers_in(conn, batch, sequential=sequential)


def raise_for_failures(results: list[TransferResult]) -> None:
    """Raise ``TransferRejected`` for the first transfer that neither succeeded nor existed
    (``linked_event_failed`` only when nothing else explains the failure)."""
    failed = [r for r in results if not r.succeeded]
    if not failed:
        return
    cause = next((r for r in failed if r.result is not Result.LINKED_EVENT_FAILED), failed[0])
    raise TransferRejected(cause.id, cause.result.value)
