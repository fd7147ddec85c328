"""``Idempotency-Key`` with Stripe's semantics, stored in PostgreSQL.

A request claims ``(merchant, mode, key)`` inside the transaction that performs its effect, so
the claim, the effect and the stored response commit together. A concurrent request with the
same key waits on the unique index until the first commits, then replays its response; if the
first rolled back, the second runs. Effects that span two transactions (a PSP call between
them) commit the claim first: a duplicate arriving meanwhile gets 409 ``idempotency_key_in_use``.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import orjson

from kassa.core import clock
from kassa.core.db import Connection
from kassa.core.errors import IdempotencyKeyInUse, IdempotencyMismatch, InvalidRequest
from kassa.core.keyring import keyring

MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's key, scoped to its account and mode, with the request it was sent with."""

    merchant_id: str
    livemode: bool
    key: str
    fingerprint: bytes
    request_id: str
    ttl: timedelta


def of_request(merchant_id: str, livemode: bool, key: str | None) -> IdempotencyKey | None:
    """The key of a request a job finishes (its process died): enough to store its response
    or release its claim (``claimed_by`` tells which claim), never to claim it again."""
    if not key:
        return None
    return IdempotencyKey(merchant_id, livemode, key, b"", "", timedelta(0))


class Replay(Exception):
    """The key was already used for this request: answer with the stored response."""

    def __init__(self, key: str, status: int, body: dict[str, Any]) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.body = body


def fingerprint(method: str, path: str, params: dict[str, Any]) -> bytes:
    """What makes two requests "the same": endpoint and parameters, in a canonical form.

    Keyed (HMAC under a key derived from the index key): a request may carry a card number,
    and a plain hash of number, expiry and CVC could be reversed by brute force from the BIN,
    last four and expiry a stored response shows."""
    canonical = orjson.dumps([method, path, params], option=orjson.OPT_SORT_KEYS)
    return hmac.new(_fingerprint_key(), canonical, hashlib.sha256).digest()


@cache
def _fingerprint_key() -> bytes:
    return hmac.new(keyring().index_key, b"kassa.idempotency.v1", hashlib.sha256).digest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidRequest(
            f"Idempotency-Key must be between 1 and {MAX_KEY_LENGTH} characters long.",
            param="Idempotency-Key",
        )
    return key


async def claim(conn: Connection, idem: IdempotencyKey | None) -> None:
    """Claim the key in ``conn``'s transaction, or raise ``Replay`` / 400 / 409."""
    if idem is None:
        return
    now = clock.now()
    claimed = await conn.fetchval(
        """
        INSERT INTO idempotency_keys
            (merchant_id, livemode, key, fingerprint, status, request_id, created_at)
        VALUES ($1, $2, $3, $4, 'in_flight', $5, $6)
        ON CONFLICT (merchant_id, livemode, key) DO UPDATE
            SET fingerprint = EXCLUDED.fingerprint, status = 'in_flight',
                response_status = NULL, response_body = NULL,
                request_id = EXCLUDED.request_id, created_at = EXCLUDED.created_at,
                completed_at = NULL
            WHERE idempotency_keys.created_at < $7
        RETURNING true
        """,
        idem.merchant_id,
        idem.livemode,
        idem.key,
        idem.fingerprint,
        idem.request_id,
        now,
        now - idem.ttl,
    )
    if claimed:
        return
    row = await conn.fetchrow(
        """
        SELECT fingerprint, status, response_status, response_body FROM idempotency_keys
        WHERE merchant_id = $1 AND livemode = $2 AND key = $3
        """,
        idem.merchant_id,
        idem.livemode,
        idem.key,
    )
    if row is None:  # pruned between the two statements: nothing to replay, so run
        return await claim(conn, idem)
    if bytes(row["fingerprint"]) != idem.fingerprint:
        raise IdempotencyMismatch(idem.key)
    if row["status"] == "completed":
        raise Replay(idem.key, row["response_status"], row["response_body"])
    raise IdempotencyKeyInUse(idem.key)


async def store_response(
    conn: Connection,
    idem: IdempotencyKey | None,
    status: int,
    body: dict[str, Any],
    *,
    claimed_by: datetime | None = None,
) -> None:
    """Record the response to replay, in the same transaction as the effect.

    ``claimed_by``: for a response finished later by a job, the time the request began; a
    claim made after it (the key expired and was used again) is another request's, and is
    left alone, and so is a response already stored."""
    if idem is None:
        return
    await conn.execute(
        """
        UPDATE idempotency_keys
        SET status = 'completed', response_status = $4, response_body = $5, completed_at = $6
        WHERE merchant_id = $1 AND livemode = $2 AND key = $3
          AND ($7::timestamptz IS NULL OR (created_at <= $7 AND status = 'in_flight'))
        """,
        idem.merchant_id,
        idem.livemode,
        idem.key,
        status,
        body,
        clock.now(),
        claimed_by,
    )


async def release(
    conn: Connection, idem: IdempotencyKey | None, *, claimed_by: datetime | None = None
) -> None:
    """Forget a claim whose request was rejected before it changed anything, so a retry runs.

    ``claimed_by``: for a request a job gives up for, the time it began; a claim made after
    it (the key expired and was used again) is another request's, and is left alone."""
    if idem is None:
        return
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE merchant_id = $1 AND livemode = $2 AND key = $3 "
        "AND status = 'in_flight' AND ($4::timestamptz IS NULL OR created_at <= $4)",
        idem.merchant_id,
        idem.livemode,
        idem.key,
        claimed_by,
    )


async def prune(conn: Connection, ttl: timedelta) -> int:
    """Delete keys older than ``ttl``; returns how many."""
    result: str = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < $1", clock.now() - ttl
    )
    return int(result.split()[-1])
