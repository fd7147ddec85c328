"""The ``MethodConnector`` for Cindral Bank (kind ``bank``): ACH debits for
``us_bank_account``, SEPA debits for ``sepa_debit``.

A debit answers ``processing`` at once; days later it settles or is returned, which the bank
announces by notification and shows on ``GET /v1/debits?reference=``. Some returns come after
settling. The bank offers no refund of a debit: a refund is a credit transfer (``POST
/v1/payouts``) back to the account the debit came from (``credit``), ``in_transit`` until it
arrives (``paid``) or is returned (``failed``), which the bank announces by notification
(``payout.paid``, ``payout.failed``) and shows on ``GET /v1/payouts?reference=``. The
card-shaped ``refund`` has no account to send to, so it answers ``FAILED``."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import httpx

from kassa.connectors.bank import mapper, webhooks
from kassa.connectors.base import (
    BankAccount,
    MethodOutcome,
    MethodRequest,
    MethodResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    StatusResult,
)
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.jsonapi import JsonConnector, ProviderError

# The bank's 400s about the account itself: a decline of this payment method, not a bug.
ACCOUNT_ERRORS = {
    "invalid_routing_number": "routing_number_invalid",
    "invalid_account_number": "account_number_invalid",
    "invalid_iban": "invalid_bank_account_iban",
}


class BankConnector(JsonConnector):
    """Cindral Bank: Bearer key, ``Idempotency-Key`` = our reference."""

    kind = "bank"
    payment_method_types = frozenset({"us_bank_account", "sepa_debit"})
    currencies = frozenset({"usd", "eur"})
    refuses_cards = "a bank takes no cards"

    def __init__(self, config: ConnectorConfig, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(
            config,
            client,
            headers={"authorization": f"Bearer {config.credential('api_key')}"},
            idempotency_header="idempotency-key",
            read_error=mapper.read_error,
            parse_webhook=webhooks.parse,
        )

    async def start(self, request: MethodRequest) -> MethodResult:
        """Ask the bank to pull the money; it answers ``processing``."""
        try:
            data = await self._post("/v1/debits", mapper.debit_body(request), request.reference)
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
        debit = mapper.latest(await self._get("/v1/debits", {"reference": reference}))
        if debit is None:
            return MethodResult(MethodOutcome.NOT_FOUND, None)
        return mapper.debit_result(debit)

    async def debit(self, psp_reference: str) -> MethodResult:
        """One debit by the bank's id."""
        return mapper.debit_result(await self._get(f"/v1/debits/{quote(psp_reference, safe='')}"))

    # The card-shaped ``Connector`` side.

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
            ModificationOutcome.FAILED, None, "A bank debit is refunded by a credit transfer."
        )

    async def credit(
        self,
        request: ModificationRequest,
        account: BankAccount,
        payment_method_type: str,
        description: str | None = None,
    ) -> ModificationResult:
        """Send ``request.amount`` back to ``account`` (a debit's refund) by credit transfer,
        under ``request.reference`` (the refund id) as idempotency key and reference: a resend
        gets the first answer. ``PENDING`` while in transit; a refusal (an account the bank
        will not credit) is ``FAILED`` and moves nothing."""
        body = mapper.credit_body(request, account, payment_method_type, description)
        try:
            data = await self._post("/v1/payouts", body, request.reference)
        except ProviderError as exc:  # a 4xx: refused, nothing sent
            return ModificationResult(
                ModificationOutcome.FAILED, None, exc.code or "credit refused by the bank"
            )
        return mapper.credit_result(data)

    async def credit_status(self, reference: str) -> ModificationResult | None:
        """The credit transfer the bank holds under our reference (None: none)."""
        data = await self._get("/v1/payouts", {"reference": reference})
        credit = mapper.latest(data)
        return mapper.credit_result(credit) if credit is not None else None

    async def status(self, reference: str) -> StatusResult:
        debit = mapper.latest(await self._get("/v1/debits", {"reference": reference}))
        if debit is None:
            return mapper.status_result(MethodResult(MethodOutcome.NOT_FOUND, None), None)
        return mapper.status_result(mapper.debit_result(debit), debit)
