"""Beltrane Gateway over HTTP: one endpoint, form-encoded requests and answers, credentials as
fields, and ``X-VPS-REQUEST-ID`` on every mutating call so that a retry after a lost answer gets
the first answer (``DUPLICATE=1``) instead of a second transaction.

Business outcomes always come back as HTTP 200 with a ``RESULT``; what the client itself
refuses to pass on is what no caller can act on: bad credentials (``RESULT=1``), a request id
reused for different fields (``DUPLICATE=-1``) and communication errors (``RESULT`` < 0)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import httpx

from kassa.connectors import http
from kassa.connectors.base import OutcomeUnknown, Rejected

FORM = "application/x-www-form-urlencoded"


class BeltraneClient:
    """Transactions for one Beltrane account, over a shared connection pool."""

    def __init__(
        self, base_url: str, credentials: Mapping[str, str], client: httpx.AsyncClient, name: str
    ) -> None:
        self._url = base_url + "/"
        self._credentials = dict(credentials)
        self._client = client
        self._name = name

    async def call(
        self,
        fields: Mapping[str, str],
        *,
        request_id: str | None,
        timeouts: httpx.Timeout,
    ) -> dict[str, str]:
        """Send one transaction; return the answer's fields (``RESULT`` ≥ 0 always)."""
        what = f"{self._name} TRXTYPE={fields.get('TRXTYPE', '?')}"
        headers = {"content-type": FORM, "accept": FORM}
        if request_id is not None:
            headers["x-vps-request-id"] = request_id
        response = await http.send(
            self._client,
            "POST",
            self._url,
            what=what,
            timeouts=timeouts,
            # Same fields in the same order give the same bytes, which is what a retry under
            # the same request id must send.
            content=urlencode({**self._credentials, **fields}).encode(),
            headers=headers,
        )
        if response.status_code != 200:
            raise Rejected(f"{what}: HTTP {response.status_code}", str(response.status_code))
        try:
            answer = dict(parse_qsl(response.text, keep_blank_values=True, strict_parsing=True))
            result = int(answer["RESULT"])
        except (KeyError, ValueError) as exc:
            # An HTTP 200 we cannot read may still be an approval: ask, don't assume.
            raise OutcomeUnknown(f"{what}: unreadable answer") from exc
        if result < 0:
            raise OutcomeUnknown(f"{what}: RESULT={result} {answer.get('RESPMSG', '')}".strip())
        if result == 1:
            raise Rejected(f"{what}: user authentication failed", "1")
        if answer.get("DUPLICATE") == "-1":
            raise Rejected(f"{what}: request id reused with different fields", "7")
        return answer
