"""HTTP plumbing every connector shares: one pooled ``httpx.AsyncClient`` per connector, and the
mapping of transport failures and generic HTTP statuses to the ``ConnectorError`` tree.

What matters for money is whether the PSP may have acted on a request. A failure before any
byte left (connection refused, no connection from the pool) is ``NotSent``; anything after the
request may have arrived (timeouts while waiting, resets, a 5xx) is ``OutcomeUnknown``, which
is resolved later by asking the PSP, never by guessing. PSP-specific statuses (4xx bodies,
business result codes) are each connector's business."""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx

from kassa.connectors.base import NotSent, OutcomeUnknown, RateLimited

USER_AGENT = "Kassa-connector/0.1"


def new_client(max_connections: int) -> httpx.AsyncClient:
    """A keep-alive connection pool for one PSP (one pool per PSP, so a slow PSP cannot starve
    the others' connections). Timeouts are set per call; redirects are never followed (a PSP
    API that redirects is misconfigured, and following could resend a payment elsewhere)."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        # Egress to PSPs must not silently go through whatever proxy the environment names.
        trust_env=False,
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )


def timeout(read: float, connect: float, pool: float) -> httpx.Timeout:
    """An httpx timeout for one call: ``read`` bounds each wait for the PSP's bytes."""
    return httpx.Timeout(read, connect=connect, write=read, pool=pool)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    timeouts: httpx.Timeout,
    content: bytes | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """Send one request and return any answer below 500 other than 429.

    ``what`` names the call in error messages (e.g. ``"acquirer_a authorize"``); messages never
    carry request bodies, which may hold card data."""
    try:
        response = await client.request(
            method, url, content=content, params=params, headers=headers, timeout=timeouts
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # No connection was ever made for this request: nothing reached the PSP.
        raise NotSent(f"{what}: could not connect ({type(exc).__name__})") from exc
    except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError) as exc:
        raise NotSent(f"{what}: request not sent ({type(exc).__name__})") from exc
    except httpx.TimeoutException as exc:
        raise OutcomeUnknown(f"{what}: no answer in time ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        # Reset, disconnect or garbage after the request went out: the PSP may have acted.
        raise OutcomeUnknown(f"{what}: connection broke ({type(exc).__name__})") from exc
    status = response.status_code
    if status == 429:
        raise RateLimited(
            f"{what}: rate limited by the PSP", retry_after(response.headers.get("retry-after"))
        )
    if status >= 500:
        # The sandbox, like real PSPs, can apply an operation and still answer 5xx.
        raise OutcomeUnknown(f"{what}: HTTP {status} from the PSP")
    return response


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
