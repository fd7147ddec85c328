"""The ``Connector`` for Arvona Checkout (kind ``acquirer_a``).

Authorisations answer at once. Captures, refunds and cancels are only acknowledged
(``PENDING``) and decided later: the CAPTURE / REFUND / CANCELLATION notification, carrying our
reference as ``operation_reference``, is the confirmation. Arvona has no "final capture" flag:
after a partial capture the remainder stays authorised until it is cancelled or lapses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from kassa.connectors import http
from kassa.connectors.acquirer_a import mapper, webhooks
from kassa.connectors.acquirer_a.client import arvona_api
from kassa.connectors.base import (
    AuthorizeRequest,
    AuthorizeResult,
    ModificationRequest,
    ModificationResult,
    Rejected,
    StatusResult,
    WebhookBatch,
)
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.jsonapi import ProviderError
from kassa.connectors.threeds import RESULT_PARAM


class ArvonaConnector:
    """Arvona Checkout: JSON, ``X-API-Key``, ``Idempotency-Key`` = our reference."""

    kind = "acquirer_a"
    partial_capture = True

    def __init__(self, config: ConnectorConfig, client: httpx.AsyncClient | None = None) -> None:
        """``client``: a shared pool to use (and not close); by default the connector opens
        its own and closes it in ``close``."""
        self.name = config.name
        self.config = config
        self._merchant = config.credential("merchant_account")
        self._owns_client = client is None
        self._http = client if client is not None else http.new_client(config.max_connections)
        self._api = arvona_api(
            config.base_url, config.credential("api_key"), self._http, config.name
        )
        t = config.timeouts
        self._authorize_timeout = http.timeout(t.authorize, t.connect, t.pool)
        self._modify_timeout = http.timeout(t.modify, t.connect, t.pool)
        self._status_timeout = http.timeout(t.status, t.connect, t.pool)

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Authorise (``capture=True``: and capture at once) under our reference."""
        body = mapper.authorize_body(request, self._merchant)
        try:
            data = await self._api.post(
                "/v1/payments",
                body,
                idempotency_key=request.reference,
                timeouts=self._authorize_timeout,
            )
        except ProviderError as exc:
            declined = mapper.card_error(exc.code, exc.detail)
            if declined is None:
                raise
            return declined
        return mapper.authorize_result(data, request.capture)

    async def complete_authentication(
        self,
        request: AuthorizeRequest,
        psp_reference: str | None,
        return_params: Mapping[str, str],
    ) -> AuthorizeResult:
        """Hand Arvona the 3-D Secure result the shopper came back with."""
        token = return_params.get(RESULT_PARAM)
        if not token:
            raise Rejected(f"{self.name}: no {RESULT_PARAM} in the return parameters")
        data = await self._api.post(
            "/v1/payments/details",
            mapper.details_body(psp_reference, token, self._merchant),
            idempotency_key=f"{request.reference}:details",
            timeouts=self._authorize_timeout,
        )
        return mapper.authorize_result(data, request.capture)

    async def capture(self, request: ModificationRequest) -> ModificationResult:
        """Ask for a (partial) capture; confirmed later by a CAPTURE notification. Arvona
        keeps a partial capture's remainder authorised: the caller voids it."""
        result = await self._modify(request, "captures", with_amount=True)
        return dataclasses.replace(result, remainder_released=False)

    async def void(self, request: ModificationRequest) -> ModificationResult:
        """Release what is not captured; confirmed later by a CANCELLATION notification."""
        return await self._modify(request, "cancels", with_amount=False)

    async def refund(self, request: ModificationRequest) -> ModificationResult:
        """Ask for a (partial) refund; confirmed later by a REFUND notification."""
        return await self._modify(request, "refunds", with_amount=True)

    async def _modify(
        self, request: ModificationRequest, kind: str, *, with_amount: bool
    ) -> ModificationResult:
        data = await self._api.post(
            f"/v1/payments/{quote(request.psp_reference, safe='')}/{kind}",
            mapper.modification_body(request, self._merchant, with_amount=with_amount),
            idempotency_key=request.reference,
            timeouts=self._modify_timeout,
        )
        return mapper.modification_result(data)

    async def status(self, reference: str) -> StatusResult:
        """What Arvona holds under our reference (``NOT_FOUND`` if nothing)."""
        data = await self._api.get(
            "/v1/payments",
            params={"merchantReference": reference},
            timeouts=self._status_timeout,
        )
        payments = data.get("data") if isinstance(data, dict) else None
        return mapper.status_result(payments if isinstance(payments, list) else [])

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch:
        """Verify every item's HMAC and return the events with the ``[accepted]`` answer."""
        return webhooks.parse(body, self.config.webhook_secret)

    async def close(self) -> None:
        """Close the connection pool if this connector opened it."""
        if self._owns_client:
            await self._http.aclose()
