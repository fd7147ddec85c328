"""What the JSON-speaking connectors share: JSON over HTTP with a per-provider
authorization header and idempotency header (``JsonApi``, Arvona's client too), and for the
bank, wallet and BNPL ``t=<unix>,v1=<hex HMAC>`` signed JSON notifications and the connector
plumbing around them (``JsonConnector``). Each provider's folder maps its own requests,
answers, error bodies and event types."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from kassa.connectors import http
from kassa.connectors.base import (
    AuthorizeRequest,
    AuthorizeResult,
    InvalidNotification,
    MethodOutcome,
    MethodResult,
    OutcomeUnknown,
    PaymentState,
    Rejected,
    StatusResult,
    WebhookBatch,
)
from kassa.connectors.configuration import ConnectorConfig
from kassa.core import clock


class ProviderError(Rejected):
    """A 4xx from the provider: it refused the request and applied nothing."""

    def __init__(self, message: str, code: str | None, status: int, detail: str | None) -> None:
        super().__init__(message, code)
        self.status = status
        self.detail = detail  # the provider's own words: its message, or the field it names


# Reads (code, detail) out of a provider's error body.
ErrorReader = Callable[[Any], tuple[str | None, str | None]]


class JsonApi:
    """Calls to one provider account over a shared connection pool."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        idempotency_header: str,
        client: httpx.AsyncClient,
        name: str,
        read_error: ErrorReader,
    ) -> None:
        self._base_url = base_url
        self._headers = {**headers, "accept": "application/json"}
        self._idempotency_header = idempotency_header
        self._client = client
        self._name = name
        self._read_error = read_error

    async def post(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        idempotency_key: str,
        timeouts: httpx.Timeout,
    ) -> Any:
        """POST ``body`` as JSON under ``idempotency_key`` (the same key always goes with the
        same bytes, so a resend is recognised as the same request)."""
        what = f"{self._name} POST {path.rsplit('/', 1)[-1]}"
        response = await http.send(
            self._client,
            "POST",
            self._base_url + path,
            what=what,
            timeouts=timeouts,
            content=orjson.dumps(body or {}),
            headers={
                **self._headers,
                "content-type": "application/json",
                self._idempotency_header: idempotency_key,
            },
        )
        return self._decode(response, what, mutating=True)

    async def get(
        self, path: str, *, params: Mapping[str, str] | None = None, timeouts: httpx.Timeout
    ) -> Any:
        """GET a JSON document; a 4xx raises ``ProviderError``."""
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
        return self._decode(response, what, mutating=False)

    def _decode(self, response: httpx.Response, what: str, *, mutating: bool) -> Any:
        status = response.status_code
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            if 200 <= status < 300:
                raise OutcomeUnknown(f"{what}: unreadable answer (HTTP {status})") from exc
            raise ProviderError(f"{what}: HTTP {status}", None, status, None) from exc
        if status >= 400:
            code, detail = self._read_error(data)
            raise ProviderError(
                f"{what}: HTTP {status} {code or ''} {detail or ''}".strip(), code, status, detail
            )
        if not 200 <= status < 300:
            if mutating:
                raise OutcomeUnknown(f"{what}: unexpected HTTP {status}")
            raise ProviderError(f"{what}: unexpected HTTP {status}", None, status, None)
        return data


def verify_signed(
    name: str, body: bytes, header: str | None, secret: str, now: float, tolerance_s: float
) -> Any:
    """Verify a ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` signature and return
    the decoded JSON body; raise ``InvalidNotification`` otherwise.

    Only stale timestamps are refused, not ones ahead of our clock: a provider's clock may
    run ahead (the sandbox's world clock does whenever tests move it forward), and what the
    window guards against — a replay — is harmless anyway, because the inbox keeps each event
    id once."""
    if not header:
        raise InvalidNotification(f"{name}: no signature header")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v.strip() for k, v in parts if k.strip() == "t"]
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()):
        raise InvalidNotification(f"{name}: malformed signature header")
    digest = hmac.new(secret.encode(), stamps[0].encode() + b"." + body, hashlib.sha256)
    expected = digest.hexdigest()
    if not any(k.strip() == "v1" and hmac.compare_digest(v.strip(), expected) for k, v in parts):
        raise InvalidNotification(f"{name}: signature does not verify")
    if now - int(stamps[0]) > tolerance_s:
        raise InvalidNotification(f"{name}: signature timestamp is too old")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidNotification(f"{name}: body is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidNotification(f"{name}: body is not a JSON object")
    return data


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by case-insensitive name."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


# Verifies a provider's notification: (body, headers, secret, now, tolerance_s) → its events.
WebhookParser = Callable[[bytes, Mapping[str, str], str, float, float], WebhookBatch]


class JsonConnector:
    """The plumbing of a ``MethodConnector`` over ``JsonApi``: the client (its own pool, or
    a shared one it leaves open), the timeouts, refusing cards, verifying notifications and
    closing. A subclass in the provider's folder gives the authorization and idempotency
    headers, its error reader and notification parser, and speaks the provider's format."""

    # The ``Rejected`` message for a card: "a bank takes no cards".
    refuses_cards = "it takes no cards"
    partial_capture = True

    def __init__(
        self,
        config: ConnectorConfig,
        client: httpx.AsyncClient | None,
        *,
        headers: Mapping[str, str],
        idempotency_header: str,
        read_error: ErrorReader,
        parse_webhook: WebhookParser,
    ) -> None:
        self.name = config.name
        self.config = config
        self._owns_client = client is None
        self._http = client if client is not None else http.new_client(config.max_connections)
        self._api = JsonApi(
            config.base_url, headers, idempotency_header, self._http, config.name, read_error
        )
        self._parse_webhook = parse_webhook
        t = config.timeouts
        self._modify_timeout = http.timeout(t.modify, t.connect, t.pool)
        self._status_timeout = http.timeout(t.status, t.connect, t.pool)

    async def _post(self, path: str, body: Mapping[str, Any] | None, key: str) -> Any:
        """A POST that changes something at the provider, under idempotency key ``key``."""
        return await self._api.post(path, body, idempotency_key=key, timeouts=self._modify_timeout)

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """A read at the provider."""
        return await self._api.get(path, params=params, timeouts=self._status_timeout)

    # The card-shaped ``Connector`` side that takes no cards.

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        raise Rejected(f"{self.name}: {self.refuses_cards}")

    async def complete_authentication(
        self,
        request: AuthorizeRequest,
        psp_reference: str | None,
        return_params: Mapping[str, str],
    ) -> AuthorizeResult:
        raise Rejected(f"{self.name}: {self.refuses_cards}")

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch:
        """Verify the provider's signature and return its events."""
        return self._parse_webhook(
            body,
            headers,
            self.config.webhook_secret,
            clock.now().timestamp(),
            self.config.webhook_tolerance_s,
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._http.aclose()


def redirect_status(result: MethodResult) -> StatusResult:
    """The card-shaped status (``Connector.status``) of a payment the shopper approves on
    the provider's page (wallet, BNPL), from what ``inquire`` found."""
    state = {
        MethodOutcome.NOT_FOUND: PaymentState.NOT_FOUND,
        MethodOutcome.REQUIRES_ACTION: PaymentState.REQUIRES_ACTION,
        MethodOutcome.AUTHORIZED: PaymentState.AUTHORIZED,
        MethodOutcome.CAPTURED: PaymentState.CAPTURED,
    }.get(result.outcome, PaymentState.DECLINED)
    return StatusResult(state, result.psp_reference, failure_code=result.failure_code)
