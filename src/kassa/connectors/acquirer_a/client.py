"""Arvona Checkout over HTTP: JSON bodies, the ``X-API-Key`` header, and an ``Idempotency-Key``
on every POST so that a retry after a lost answer replays the first answer instead of acting
twice. Errors are ``{"status", "errorCode", "message", "errorType"}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from kassa.connectors import http
from kassa.connectors.base import OutcomeUnknown, Rejected


class ArvonaError(Rejected):
    """A 4xx from Arvona: it refused the request and applied nothing."""

    def __init__(
        self, message: str, code: str | None, status: int, psp_message: str | None = None
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.psp_message = psp_message


class ArvonaClient:
    """Calls to one Arvona merchant account, over a shared connection pool."""

    def __init__(self, base_url: str, api_key: str, client: httpx.AsyncClient, name: str) -> None:
        self._base_url = base_url
        self._headers = {"x-api-key": api_key, "accept": "application/json"}
        self._client = client
        self._name = name

    async def post(
        self, path: str, body: Mapping[str, Any], *, idempotency_key: str, timeouts: httpx.Timeout
    ) -> tuple[int, Any]:
        """POST ``body`` as JSON under ``idempotency_key``; return (status, decoded JSON)."""
        what = f"{self._name} POST {path.split('/')[-1] or path}"
        response = await http.send(
            self._client,
            "POST",
            self._base_url + path,
            what=what,
            timeouts=timeouts,
            # Same request, same bytes: Arvona binds the key to the exact body, and a retry
            # must be recognised as the same request.
            content=orjson.dumps(body),
            headers={
                **self._headers,
                "content-type": "application/json",
                "idempotency-key": idempotency_key,
            },
        )
        return response.status_code, _decode(response, what, mutating=True)

    async def get(
        self, path: str, *, params: Mapping[str, str] | None = None, timeouts: httpx.Timeout
    ) -> Any:
        """GET a JSON document; any 4xx raises ``ArvonaError``."""
        what = f"{self._name} GET {path}"
        response = await http.send(
            self._client,
            "GET",
            self._base_url + path,
            what=what,
            timeouts=timeouts,
            params=params,
            headers=self._headers,
        )
        return _decode(response, what, mutating=False)


def _decode(response: httpx.Response, what: str, *, mutating: bool) -> Any:
    status = response.status_code
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        if 200 <= status < 300:
            # A success we cannot read may still be a success: ask, don't assume.
            raise OutcomeUnknown(f"{what}: unreadable answer (HTTP {status})") from exc
        raise ArvonaError(f"{what}: HTTP {status}", None, status) from exc
    if status >= 400:
        code = data.get("errorCode") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else None
        raise ArvonaError(
            f"{what}: HTTP {status} {code or ''} {message or ''}".strip(),
            str(code) if code is not None else None,
            status,
            str(message) if message is not None else None,
        )
    if not 200 <= status < 300:
        # 1xx/3xx: not an answer Arvona gives; after a POST it may still have acted.
        if mutating:
            raise OutcomeUnknown(f"{what}: unexpected HTTP {status}")
        raise ArvonaError(f"{what}: unexpected HTTP {status}", None, status)
    return data
