"""Arvona Checkout over HTTP: JSON bodies, the ``X-API-Key`` header, and an ``Idempotency-Key``
on every POST so that a retry after a lost answer replays the first answer instead of acting
twice (``connectors.jsonapi.JsonApi``). Errors are ``{"status", "errorCode", "message",
"errorType"}``."""

from __future__ import annotations

from typing import Any

import httpx

from kassa.connectors.jsonapi import JsonApi


def read_error(data: Any) -> tuple[str | None, str | None]:
    """(``errorCode``, ``message``) of an Arvona error body."""
    if not isinstance(data, dict):
        return None, None
    code, message = data.get("errorCode"), data.get("message")
    return (
        str(code) if code is not None else None,
        str(message) if message is not None else None,
    )


def arvona_api(base_url: str, api_key: str, client: httpx.AsyncClient, name: str) -> JsonApi:
    """Calls to one Arvona merchant account, over a shared connection pool."""
    return JsonApi(base_url, {"x-api-key": api_key}, "idempotency-key", client, name, read_error)
