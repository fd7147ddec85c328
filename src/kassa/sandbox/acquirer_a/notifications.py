"""Arvona's notification batches and their per-item HMAC signatures.

Each item is signed over ``pspReference:originalReference:merchantAccountCode:
merchantReference:value:currency:eventCode:success`` (missing fields as empty strings) with
HMAC-SHA256 under the hex-decoded key; the signature is base64 in
``additionalData.hmacSignature``. The receiver must answer ``[accepted]`` or the whole batch
is sent again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

MAX_BATCH = 10


def signing_string(item: Mapping[str, Any]) -> str:
    """Return the string an item's signature covers."""
    amount = item.get("amount") or {}
    fields = (
        item.get("pspReference", ""),
        item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""),
        str(amount.get("value", "")),
        amount.get("currency", ""),
        item.get("eventCode", ""),
        item.get("success", ""),
    )
    return ":".join(str(f) for f in fields)


def item_signature(item: Mapping[str, Any], hex_key: str) -> str:
    """Return the base64 HMAC-SHA256 signature of a notification item."""
    mac = hmac.new(bytes.fromhex(hex_key), signing_string(item).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class ArvonaNotificationFormat:
    """Batches of up to ten signed items; acknowledged only by the body ``[accepted]``."""

    max_batch = MAX_BATCH

    def encode(
        self, events: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[bytes, dict[str, str]]:
        """Wrap already-signed items into one notification request."""
        body = {
            "live": "false",
            "notificationItems": [{"NotificationRequestItem": item} for item in events],
        }
        return orjson.dumps(body), {"content-type": "application/json"}

    def accepted(self, status: int, body: bytes) -> bool:
        """Only HTTP 200 with ``[accepted]`` acknowledges a batch."""
        return status == 200 and body.strip() == b"[accepted]"
