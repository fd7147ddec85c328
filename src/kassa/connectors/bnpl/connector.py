"""The ``MethodConnector`` for Deferro (kind ``bnpl``), Stripe's ``klarna`` type.

``start`` opens a checkout and answers ``REQUIRES_ACTION`` with the customer's page; Deferro
runs its credit check when the customer approves. ``complete`` reads the checkout (never
trusting the return URL's query) and captures an authorised one. Deferro pays the merchant
``settlement_delay_s`` after the capture: ``settles_after`` says how long."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from kassa.connectors.base import (
    MethodOutcome,
    MethodRequest,
    MethodResult,
    ModificationOutcome,
    ModificationRequest,
    ModificationResult,
    Rejected,
    StatusResult,
)
from kassa.connectors.bnpl import mapper, webhooks
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.jsonapi import JsonConnector, ProviderError, redirect_status


class BnplConnector(JsonConnector):
    """Deferro: Bearer key, ``Idempotency-Key`` = our reference."""

    kind = "bnpl"
    payment_method_types = frozenset({"klarna"})
    currencies = mapper.CURRENCIES
    refuses_cards = "buy now, pay later takes no cards"

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
        """Open the checkout; the customer approves it on the page in ``redirect_url``."""
        if not request.return_url or not request.cancel_url or not request.email:
            raise Rejected(f"{self.name}: a checkout needs return and cancel URLs and an email")
        data = await self._post("/v1/checkouts", mapper.checkout_body(request), request.reference)
        return mapper.checkout_result(data)

    async def complete(
        self, request: MethodRequest, psp_reference: str, return_params: Mapping[str, str]
    ) -> MethodResult:
        """Read the checkout; capture it if authorised and the payment captures now."""
        result = mapper.checkout_result(await self._checkout(psp_reference))
        if result.outcome is not MethodOutcome.AUTHORIZED or not request.capture:
            return result
        return await self._capture(psp_reference, f"{request.reference}:capture", None)

    async def _capture(self, checkout_id: str, key: str, amount: int | None) -> MethodResult:
        body = {"amount": amount} if amount is not None else None
        try:
            data = await self._post(
                f"/v1/checkouts/{quote(checkout_id, safe='')}/capture", body, key
            )
        except ProviderError as exc:
            if exc.code != "invalid_state":
                raise
            data = await self._checkout(checkout_id)  # captured already (a race or a resend)
        return mapper.checkout_result(data)

    async def inquire(self, reference: str) -> MethodResult:
        """The checkout Deferro holds under our reference."""
        data = await self._get("/v1/checkouts", {"reference": reference})
        found = data.get("data") if isinstance(data, Mapping) else None
        checkouts = [c for c in found if isinstance(c, Mapping)] if isinstance(found, list) else []
        if not checkouts:
            return MethodResult(MethodOutcome.NOT_FOUND, None)
        return mapper.checkout_result(checkouts[-1])

    async def _checkout(self, checkout_id: str) -> Mapping[str, Any]:
        data = await self._get(f"/v1/checkouts/{quote(checkout_id, safe='')}")
        if not isinstance(data, Mapping):
            raise Rejected(f"{self.name}: unreadable checkout")
        return data

    # The card-shaped ``Connector`` side: capture, void and refund of a checkout.

    async def capture(self, request: ModificationRequest) -> ModificationResult:
        """Capture (part of) an authorised checkout. Deferro closes the checkout on capture
        (``captured``: no further capture, no cancel), so the uncaptured remainder of a
        partial capture is released there and then: nothing is left for Kassa to void."""
        result = await self._capture(request.psp_reference, request.reference, request.amount)
        if result.outcome is MethodOutcome.CAPTURED:
            return ModificationResult(
                ModificationOutcome.SUCCEEDED, result.psp_reference, remainder_released=True
            )
        return ModificationResult(ModificationOutcome.FAILED, None, result.message)

    async def void(self, request: ModificationRequest) -> ModificationResult:
        """Cancel a pending or authorised checkout."""
        try:
            await self._post(
                f"/v1/checkouts/{quote(request.psp_reference, safe='')}/cancel",
                None,
                request.reference,
            )
        except ProviderError as exc:
            if exc.status != 409:
                raise
            return ModificationResult(ModificationOutcome.FAILED, None, exc.code)
        return ModificationResult(ModificationOutcome.SUCCEEDED, request.psp_reference)

    async def refund(self, request: ModificationRequest) -> ModificationResult:
        """Refund (part of) a captured checkout; after Deferro paid out, it comes out of the
        next settlement."""
        try:
            refund = await self._post(
                f"/v1/checkouts/{quote(request.psp_reference, safe='')}/refunds",
                {"amount": request.amount},
                request.reference,
            )
        except ProviderError as exc:
            if exc.status not in (400, 409):
                raise
            return ModificationResult(ModificationOutcome.FAILED, None, exc.code)
        refund_id = refund.get("id") if isinstance(refund, Mapping) else None
        return ModificationResult(
            ModificationOutcome.SUCCEEDED, refund_id if isinstance(refund_id, str) else None
        )

    async def status(self, reference: str) -> StatusResult:
        return redirect_status(await self.inquire(reference))
