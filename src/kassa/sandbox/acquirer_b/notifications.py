"""Beltrane's "silent post" notifications: form-encoded, one per request, HMAC-signed.

The header ``X-Beltrane-Signature: t=<unix>,v1=<hex>`` carries HMAC-SHA256 of
``"<t>." + body`` under the webhook secret; any 2xx answer acknowledges the post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from kassa.sandbox.signing import timestamped_signature

SIGNATURE_HEADER = "x-beltrane-signature"


class SilentPostFormat:
    """One form-encoded notification per request."""

    max_batch = 1

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def encode(
        self, events: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[bytes, dict[str, str]]:
        """Form-encode the event and sign it."""
        body = urlencode(events[0]).encode()
        return body, {
            "content-type": "application/x-www-form-urlencoded",
            SIGNATURE_HEADER: timestamped_signature(self.secret, body, int(now)),
        }

    def accepted(self, status: int, body: bytes) -> bool:
        """Any 2xx acknowledges the post."""
        return 200 <= status < 300
