"""Endpoint signing secrets: generated, sealed at rest, rotated with a grace period, and used
for the ``Stripe-Signature`` header."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import orjson

from kassa.core.ids import random_token
from kassa.core.keyring import keyring


@dataclass(frozen=True, slots=True)
class Secret:
    value: str
    expires_at: int | None  # unix seconds; None for the current secret


def new_secret() -> str:
    """A fresh ``whsec_…`` secret (192 random bits)."""
    return "whsec_" + random_token(24)


def seal(endpoint_id: str, secrets: list[Secret]) -> tuple[bytes, bytes]:
    """``(wrapped data key, ciphertext)`` of the endpoint's secrets, bound to its id."""
    plain = orjson.dumps([{"secret": s.value, "expires_at": s.expires_at} for s in secrets])
    return keyring().seal_record(endpoint_id, plain)


def unseal(endpoint_id: str, wrapped: bytes, sealed: bytes) -> list[Secret]:
    items = orjson.loads(keyring().open_record(endpoint_id, wrapped, sealed))
    return [Secret(i["secret"], i["expires_at"]) for i in items]


def live(secrets: list[Secret], now: int) -> list[Secret]:
    """The secrets that still sign at ``now``, newest first."""
    return [s for s in secrets if s.expires_at is None or s.expires_at > now]


def rotate(secrets: list[Secret], now: int, expires_in: int) -> tuple[str, list[Secret]]:
    """A new current secret; the previous current one keeps signing for ``expires_in``
    seconds, older ones keep their own expiry."""
    fresh = new_secret()
    kept = [Secret(fresh, None)]
    for s in live(secrets, now):
        expiry = now + expires_in if s.expires_at is None else s.expires_at
        if expiry > now:
            kept.append(Secret(s.value, expiry))
    return fresh, kept


def signature_header(secrets: list[Secret], timestamp: int, body: bytes) -> str:
    """``t=…,v1=…[,v1=…]``: HMAC-SHA256 keyed with the whole ``whsec_…`` string over
    ``f"{t}.{body}"``, one ``v1`` per live secret, as Stripe signs."""
    message = str(timestamp).encode() + b"." + body
    parts = [f"t={timestamp}"]
    for s in secrets:
        digest = hmac.new(s.value.encode(), message, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)
