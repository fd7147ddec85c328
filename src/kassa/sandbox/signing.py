"""HMAC signatures the sandbox services put on webhooks and redirect results.

The timestamped header scheme (``t=<unix>,v1=<hex>``) is what the bank, wallet, BNPL and the
form-style acquirer use; the JSON acquirer signs each notification item its own way (see
:mod:`kassa.sandbox.acquirer_a.notifications`). Tokens carry a signed JSON payload through a
browser redirect, e.g. a 3-D Secure result.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``message`` under ``key``."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def timestamped_signature(secret: str, body: bytes, timestamp: int) -> str:
    """Return ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac_sha256_hex(secret.encode(), str(timestamp).encode() + b"." + body)
    return f"t={timestamp},v1={mac}"


def verify_timestamped_signature(secret: str, body: bytes, header: str) -> bool:
    """Check a ``t=…,v1=…`` header against ``body``; any matching ``v1`` entry is enough."""
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    expected = timestamped_signature(secret, body, int(stamps[0])).split("v1=", 1)[1]
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in parts)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: str, payload: Mapping[str, Any]) -> str:
    """Return ``base64url(json payload) + "." + base64url(HMAC-SHA256(secret, first part))``."""
    body = _b64(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify_token(secret: str, token: str) -> dict[str, Any] | None:
    """Return a token's payload if its signature is valid, else None."""
    body, _, mac = token.partition(".")
    if not body or not mac:
        return None
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        payload = orjson.loads(_unb64(body))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
