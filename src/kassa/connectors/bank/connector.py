"""The ``MethodConnector`` for Cindral Bank (kind ``bank``): ACH debits for
``us_bank_account``, SEPA debits for ``sepa_debit``.

A debit answers ``processing`` at once; days later it settles or is returned, which the bank
announces by notification and shows on ``GET /v1/debits?reference=``. Some returns come after
settling. The bank offers no refund of a debit (a credit back would be a payout to the account,
which this connector does not make), so ``refund`` answers ``FAILED`` and nothing moves."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import httpx

from kassa.connectors import http
from kassa.connectors.bank import mapper, webhooks
from kassa.connectors.base import (
    AuthorizeRequest,
    AuthorizeResult,
    MethodOutcome,
    MethodRequest,
    MethodResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    Rejected,
    StatusResult,
    WebhookBatch,
)
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.jsonapi import JsonApi, ProviderError
from kassa.core import clock

# The bank's 400s about the account itself: a decline of this payment method, not a bug.
ACCOUNT_ERRORS = {
    "invalid_routing_number": "routing_number_invalid",
    "invalid_account_number": "account_number_invalid",
    "invalid_iban": "invalid_bank_account_iban",
}


class BankConnector:
    """Cindral Bank: Bearer key, ``Idempotency-Key`` = our reference."""

    kind = "bank"
    payment_method_types = frozenset({"us_bank_account", "sepa_debit"})
    currencies = frozenset({"usd", "eur"})

    def __init__(self, config: ConnectorConfig, client: httpx.AsyncClient | None = None) -> None:
        self.name = config.name
        self.config = config
        self._owns_client = client is None
        self._http = client if client is not None else http.new_client(config.max_connections)
        self._api = JsonApi(
            config.base_url,
            {"authorization": f"Bearer {config.credential('api_key')}"},
            "idempotency-key",
            self._http,
            config.name,
            mapper.read_error,
        )
        t = config.timeouts
        self._modify_timeout = http.timeout(t.modify, t.connect, t.pool)
        self._status_timeout = http.timeout(t.status, t.connect, t.pool)

    async def start(self, request: MethodRequest) -> MethodResult:
        """Ask the bank to pull the money; it answers ``processing``."""
        try:
            data = await self._api.post(
                "/v1/debits",
                mapper.debit_body(request),
                idempotency_key=request.reference,
                timeouts=self._modify_timeout,
            )
        except ProviderError as exc:
            code = ACCOUNT_ERRORS.get(exc.code or "")
            if code is None:
                raise
            return MethodResult(MethodOutcome.DECLINED, None, failure_code=code, psp_code=exc.code)
        return mapper.debit_result(data)

    async def complete(
        self, request: MethodRequest, psp_reference: str, return_params: Mapping[str, str]
    ) -> MethodResult:
        """A debit has no shopper step: this is an inquiry."""
        return await self.inquire(request.reference)

    async def inquire(self, reference: str) -> MethodResult:
        """The debit the bank holds under our reference."""
        data = await self._api.get(
            "/v1/debits", params={"reference": reference}, timeouts=self._status_timeout
        )
        debit = mapper.latest(data)
        if debit is None:
            return MethodResult(MethodOutcome.NOT_FOUND, None)
        return mapper.debit_result(debit)

    async def debit(self, psp_reference: str) -> MethodResult:
        """One debit by the bank's id."""
        data = await self._api.get(
            f"/v1/debits/{quote(psp_reference, safe='')}", timeouts=self._status_timeout
        )
        return mapper.debit_result(data)

    # The card-shaped ``Connector`` side.

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult:
        raise Rejected(f"{self.name}: a bank takes no cards")

    async def complete_authentication(
        self,
        request: AuthorizeRequest,
        psp_reference: str | None,
        return_params: Mapping[str, str],
    ) -> AuthorizeResult:
        raise Rejected(f"{self.name}: a bank takes no cards")

    async def capture(self, request: ModificationRequest) -> ModificationResult:
        return ModificationResult(
            ModificationOutcome.FAILED, None, "A bank debit is captured when it settles."
        )

    async def void(self, request: ModificationRequest) -> ModificationResult:
        return ModificationResult(
            ModificationOutcome.FAILED, None, "A bank debit on the rail cannot be voided."
        )

    async def refund(self, request: ModificationRequest) -> ModificationResult:
        return ModificationResult(
            ModificationOutcome.FAILED, None, "Refunds of bank debits are not supported yet."
        )

    async def status(self, reference: str) -> StatusResult:
        data = await self._api.get(
            "/v1/debits", params={"reference": reference}, timeouts=self._status_timeout
        )
        debit = mapper.latest(data)
        if debit is None:
            return mapper.status_result(MethodResult(MethodOutcome.NOT_FOUND, None), None)
        return mapper.status_result(mapper.debit_result(debit), debit)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch:
        """Verify ``Cindral-Signature`` and return the debit event."""
        return webhooks.parse(
            body,
            headers,
            self.config.webhook_secret,
            clock.now().timestamp(),
            self.config.webhook_tolerance_s,
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._http.aclose()
