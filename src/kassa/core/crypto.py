"""Envelope encryption: each record gets its own AES-256-GCM data key, stored wrapped by a
key-encryption key (KEK). Rotating the KEK re-wraps data keys without touching ciphertexts;
deleting a record's wrapped key crypto-shreds it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


@dataclass(frozen=True)
class Kek:
    """A key-encryption key and its id (the id is stored with every wrapping)."""

    key_id: str
    key: bytes

    @classmethod
    def from_base64(cls, key_id: str, value: str) -> Kek:
        key = base64.b64decode(value)
        if len(key) != 32:
            raise ValueError("a KEK must be 32 bytes (base64-encoded)")
        return cls(key_id, key)


def generate_key() -> str:
    """A fresh 256-bit key, base64-encoded (for configuration files)."""
    return base64.b64encode(os.urandom(32)).decode()


@lru_cache(maxsize=8)
def _kek_cipher(key: bytes) -> AESGCM:
    # KEKs are few and used for every record: keep their key schedules.
    return AESGCM(key)


def _seal(cipher: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + cipher.encrypt(nonce, plaintext, aad)


def _open(cipher: AESGCM, sealed: bytes, aad: bytes) -> bytes:
    return cipher.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)


def wrap_key(kek: Kek, data_key: bytes) -> bytes:
    """``<kek id>:`` + the data key sealed under the KEK."""
    return kek.key_id.encode() + b":" + _seal(_kek_cipher(kek.key), data_key, kek.key_id.encode())


def unwrap_key(keks: dict[str, Kek], wrapped: bytes) -> bytes:
    key_id, _, sealed = wrapped.partition(b":")
    kek = keks[key_id.decode()]
    return _open(_kek_cipher(kek.key), sealed, key_id)


def wrapped_by(wrapped: bytes) -> str:
    return wrapped.partition(b":")[0].decode()


def new_data_key() -> bytes:
    return os.urandom(32)


def encrypt(data_key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Seal ``plaintext`` under a record's data key; ``aad`` binds it to its record id."""
    return _seal(AESGCM(data_key), plaintext, aad)


def decrypt(data_key: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    return _open(AESGCM(data_key), sealed, aad)


def blind_index(key: bytes, value: str) -> bytes:
    """A keyed hash for equality lookups on an encrypted field (not reversible)."""
    return hmac.new(key, value.encode(), hashlib.sha256).digest()


def sha256_hex(value: str) -> str:
    """Hash of a high-entropy secret (API keys): a plain digest suffices, no KDF needed."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Keyring:
    """The KEKs this process knows: ``current`` wraps new data keys, ``all`` unwraps old ones
    during a rotation."""

    current: Kek
    all: dict[str, Kek]
    index_key: bytes

    def seal_record(self, record_id: str, plaintext: bytes) -> tuple[bytes, bytes]:
        """Encrypt one record under a fresh data key: ``(wrapped data key, ciphertext)``."""
        data_key = new_data_key()
        return wrap_key(self.current, data_key), encrypt(data_key, plaintext, record_id.encode())

    def open_record(self, record_id: str, wrapped: bytes, sealed: bytes) -> bytes:
        return decrypt(unwrap_key(self.all, wrapped), sealed, record_id.encode())

    def blind_index(self, value: str) -> bytes:
        return blind_index(self.index_key, value)
