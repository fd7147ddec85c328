"""The vault's cryptography: card numbers and billing details sealed under per-record data keys
(``core.keyring``), keyed fingerprints, and re-wrapping data keys under the current KEK."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import Any

import orjson

from kassa.core.crypto import Keyring, unwrap_key, wrap_key, wrapped_by
from kassa.core.db import Record
from kassa.core.keyring import keyring
from kassa.vault import cards
from kassa.vault.schemas import is_empty


@lru_cache(maxsize=4)
def _derived_key(index_key: bytes, purpose: bytes) -> bytes:
    # One configured secret, one key per purpose: a card fingerprint can never be matched
    # against another domain's blind index.
    return hmac.new(index_key, b"kassa.vault." + purpose, hashlib.sha256).digest()


def fingerprint_of(number: str) -> str:
    """The card fingerprint of ``number``: the same for every merchant of this platform."""
    return cards.fingerprint(_derived_key(keyring().index_key, b"fingerprint.v1"), number)


def bank_fingerprint_of(account: str) -> str:
    """The fingerprint of a bank account (``routing/account`` or an IBAN): keyed like a card
    fingerprint, under a key of its own."""
    return cards.fingerprint(_derived_key(keyring().index_key, b"bank_fingerprint.v1"), account)


def seal_pan(pm_id: str, number: str) -> tuple[bytes, bytes, str]:
    """``(wrapped data key, ciphertext, KEK id)`` of a card number, bound to ``pm_id``."""
    ring = keyring()
    wrapped, sealed = ring.seal_record(pm_id, number.encode())
    return wrapped, sealed, ring.current.key_id


def open_pan(row: Record) -> str:
    return keyring().open_record(row["id"], bytes(row["pan_key"]), bytes(row["pan"])).decode()


def _billing_record(pm_id: str) -> str:
    # Its own AAD: a billing ciphertext can never be opened as the card number, or vice versa.
    return f"{pm_id}/billing_details"


def seal_billing(pm_id: str, billing: dict[str, Any]) -> tuple[bytes | None, bytes | None]:
    """``(wrapped data key, ciphertext)`` of billing details, or Nones when there are none."""
    if is_empty(billing):
        return None, None
    wrapped, sealed = keyring().seal_record(_billing_record(pm_id), orjson.dumps(billing))
    return wrapped, sealed


def open_billing(row: Record) -> dict[str, Any]:
    if row["billing_details"] is None:
        return {}
    plain = keyring().open_record(
        _billing_record(row["id"]), bytes(row["billing_key"]), bytes(row["billing_details"])
    )
    data: dict[str, Any] = orjson.loads(plain)
    return data


def under_current_kek(wrapped: bytes, ring: Keyring | None = None) -> bytes:
    """``wrapped`` re-wrapped by the current KEK (unchanged if it already is)."""
    ring = ring or keyring()
    if wrapped_by(wrapped) == ring.current.key_id:
        return wrapped
    return wrap_key(ring.current, unwrap_key(ring.all, wrapped))
