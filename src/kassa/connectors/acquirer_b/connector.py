"""The ``Connector`` for Beltrane Gateway (kind ``acquirer_b``).

Everything is synchronous: captures, credits and voids succeed or fail in the answer, and the
silent posts that follow only confirm. Beltrane runs no 3-D Secure challenge of its own: when
the issuer wants one (``RESULT=160``) the connector authenticates the card at the configured
3-D Secure server and either re-submits at once with the result (frictionless) or sends the
shopper to the challenge page; ``complete_authentication`` re-submits with the result the
shopper came back with."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from kassa.connectors import http
from kassa.connectors.acquirer_b import mapper, webhooks
from kassa.connectors.acquirer_b.client import BeltraneClient
from kassa.connectors.base import (
    AuthorizeOutcome,
    AuthorizeRequest,
    AuthorizeResult,
    ModificationRequest,
    ModificationResult,
    Rejected,
    StatusResult,
    WebhookBatch,
)
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.threeds import RESULT_PARAM, ThreeDSClient
from kassa.core import clock


class BeltraneConnector:
    """Beltrane Gateway: NVP over one endpoint, ``X-VPS-REQUEST-ID`` = our reference."""

    kind = "acquirer_b"
    partial_capture = True

    def __init__(
        self,
        config: ConnectorConfig,
        client: httpx.AsyncClient | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        """``client``: a shared pool to use (and not close); by default the connector opens
        its own. ``now``: unix seconds for checking notification timestamps (default: Kassa's
        clock)."""
        self.name = config.name
        self.config = config
        self._owns_client = client is None
        self._http = client if client is not None else http.new_client(config.max_connections)
        credentials = mapper.credentials_form(
            config.credential("user"),
            config.credentials.get("vendor") or config.credential("user"),
            config.credential("partner"),
            config.credential("password"),
        )
        self._api = BeltraneClient(config.base_url, credentials, self._http, config.name)
        self._threeds = (
            ThreeDSClient(config.threeds, self._http, config.timeouts) if config.threeds else None
        )
        self._now = now or (lambda: clock.now().timestamp())
        t = config.timeouts
        self._authorize_timeout = http.timeout(t.authorize, t.connect, t.pool)
        self._modify_timeout = http.timeout(t.modify, t.connect, t.pool)
        self._status_timeout = http.timeout(t.status, t.connect, t.pool)

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        """Sale (``capture=True``) or authorization under our reference; runs 3-D Secure
        when the issuer asks for it."""
        result = await self._sale(request, None, request.reference)
        if result.outcome is not AuthorizeOutcome.REQUIRES_ACTION:
            return result
        return await self._authenticate(request, result)

    async def complete_authentication(
        self,
        request: AuthorizeRequest,
        psp_reference: str | None,
        return_params: Mapping[str, str],
    ) -> AuthorizeResult:
        """Re-submit the transaction with the 3-D Secure result the shopper came back with."""
        token = return_params.get(RESULT_PARAM)
        if not token:
            raise Rejected(f"{self.name}: no {RESULT_PARAM} in the return parameters")
        return await self._authenticated_sale(request, token)

    async def _sale(
        self, request: AuthorizeRequest, token: str | None, request_id: str
    ) -> AuthorizeResult:
        fields = await self._api.call(
            mapper.sale_form(request, token),
            request_id=request_id,
            timeouts=self._authorize_timeout,
        )
        return mapper.sale_result(fields, request.capture)

    async def _authenticated_sale(self, request: AuthorizeRequest, token: str) -> AuthorizeResult:
        # Its own request id: the first submission's id is bound to fields without the result.
        result = await self._sale(request, token, f"{request.reference}:3ds")
        if result.outcome is AuthorizeOutcome.REQUIRES_ACTION:
            return _declined(mapper.DECLINES["161"], result)
        return result

    async def _authenticate(
        self, request: AuthorizeRequest, needed: AuthorizeResult
    ) -> AuthorizeResult:
        if self._threeds is None:
            return _declined(mapper.NEEDS_AUTHENTICATION, needed)
        auth = await self._threeds.begin(
            request.card,
            request.amount,
            request.currency,
            request.return_url,
            request.reference,
            off_session=request.off_session,
        )
        if auth.status == "C" and auth.challenge_url:
            return AuthorizeResult(
                AuthorizeOutcome.REQUIRES_ACTION,
                needed.psp_reference,
                message=needed.message,
                redirect_url=auth.challenge_url,
                psp_code=needed.psp_code,
            )
        if auth.status == "Y" and auth.result:
            return await self._authenticated_sale(request, auth.result)
        return _declined(mapper.DECLINES["161"], needed)

    async def capture(self, request: ModificationRequest) -> ModificationResult:
        """Delayed capture of the authorization; ``final_capture`` closes it."""
        return await self._follow_up("D", request)

    async def void(self, request: ModificationRequest) -> ModificationResult:
        """Void what is not captured of the authorization."""
        return await self._follow_up("V", request)

    async def refund(self, request: ModificationRequest) -> ModificationResult:
        """Credit (part of) what was captured; several credits may follow one another."""
        return await self._follow_up("C", request)

    async def _follow_up(self, trxtype: str, request: ModificationRequest) -> ModificationResult:
        fields = await self._api.call(
            mapper.follow_up_form(trxtype, request),
            request_id=request.reference,
            timeouts=self._modify_timeout,
        )
        return mapper.modification_result(fields)

    async def status(self, reference: str) -> StatusResult:
        """Inquiry (``TRXTYPE=I``) by our reference; ``NOT_FOUND`` for ``RESULT=19``."""
        fields = await self._api.call(
            mapper.inquiry_form(reference), request_id=None, timeouts=self._status_timeout
        )
        return mapper.status_result(fields)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch:
        """Verify the silent post's signature and timestamp and return its event."""
        return webhooks.parse(
            body, headers, self.config.webhook_secret, self._now(), self.config.webhook_tolerance_s
        )

    async def close(self) -> None:
        """Close the connection pool if this connector opened it."""
        if self._owns_client:
            await self._http.aclose()


def _declined(codes: mapper.Codes, result: AuthorizeResult) -> AuthorizeResult:
    return AuthorizeResult(
        AuthorizeOutcome.DECLINED,
        result.psp_reference,
        decline_code=codes[1],
        failure_code=codes[0],
        message=result.message,
        psp_code=result.psp_code,
    )
