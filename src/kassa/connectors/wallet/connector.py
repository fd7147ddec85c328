"""The ``MethodConnector`` for Purslane (kind ``wallet``), Stripe's ``paypal`` type.

``start`` creates an order and answers ``REQUIRES_ACTION`` with its approval page. When the
buyer is back (or a notification says they approved), ``complete`` reads the order — never
trusting the return URL's query — and captures an approved one. Refunds go to the order's
capture, found by reading the order, so charges keep the order id as their reference."""

from __future__ import annotations

import base64
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
from kassa.connectors.configuration import ConnectorConfig
from kassa.connectors.jsonapi import JsonConnector, ProviderError, redirect_status
from kassa.connectors.wallet import mapper, webhooks


class WalletConnector(JsonConnector):
    """Purslane: HTTP Basic client credentials, ``Purslane-Request-Id`` = our reference."""

    kind = "wallet"
    payment_method_types = frozenset({"paypal"})
    currencies = mapper.CURRENCIES
    refuses_cards = "a wallet takes no cards"
    partial_capture = False  # Purslane captures an order whole

    def __init__(self, config: ConnectorConfig, client: httpx.AsyncClient | None = None) -> None:
        basic = f"{config.credential('client_id')}:{config.credential('client_secret')}"
        super().__init__(
            config,
            client,
            headers={"authorization": "Basic " + base64.b64encode(basic.encode()).decode()},
            idempotency_header="purslane-request-id",
            read_error=mapper.read_error,
            parse_webhook=webhooks.parse,
        )

    async def start(self, request: MethodRequest) -> MethodResult:
        """Create the order; the buyer approves it on the page in ``redirect_url``."""
        if not request.return_url or not request.cancel_url:
            raise Rejected(f"{self.name}: an order needs return and cancel URLs")
        order = await self._post("/v1/orders", mapper.order_body(request), request.reference)
        return mapper.order_result(order)

    async def complete(
        self, request: MethodRequest, psp_reference: str, return_params: Mapping[str, str]
    ) -> MethodResult:
        """Read the order; capture it if the buyer approved and the payment captures now."""
        order = await self._order(psp_reference)
        result = mapper.order_result(order)
        if result.outcome is not MethodOutcome.AUTHORIZED or not request.capture:
            return result
        return await self._capture_order(psp_reference, f"{request.reference}:capture")

    async def _capture_order(self, order_id: str, key: str) -> MethodResult:
        try:
            order = await self._post(f"/v1/orders/{quote(order_id, safe='')}/capture", None, key)
        except ProviderError as exc:
            if exc.code == "INSTRUMENT_DECLINED":
                return MethodResult(
                    MethodOutcome.DECLINED,
                    order_id,
                    failure_code=mapper.DECLINED,
                    message="The buyer's funding instrument was declined.",
                    psp_code=exc.code,
                )
            if exc.code != "ORDER_ALREADY_CAPTURED":
                raise
            order = await self._order(order_id)
        return mapper.order_result(order)

    async def inquire(self, reference: str) -> MethodResult:
        """The order Purslane holds under our reference."""
        data = await self._get("/v1/orders", {"reference_id": reference})
        found = data.get("data") if isinstance(data, Mapping) else None
        orders = [o for o in found if isinstance(o, Mapping)] if isinstance(found, list) else []
        if not orders:
            return MethodResult(MethodOutcome.NOT_FOUND, None)
        return mapper.order_result(orders[-1])

    async def _order(self, order_id: str) -> Mapping[str, Any]:
        order = await self._get(f"/v1/orders/{quote(order_id, safe='')}")
        if not isinstance(order, Mapping):
            raise Rejected(f"{self.name}: unreadable order")
        return order

    # The card-shaped ``Connector`` side: capture, void and refund of an order.

    async def capture(self, request: ModificationRequest) -> ModificationResult:
        """Capture an approved order (Purslane captures orders whole)."""
        result = await self._capture_order(request.psp_reference, request.reference)
        if result.outcome is MethodOutcome.CAPTURED:
            return ModificationResult(ModificationOutcome.SUCCEEDED, result.capture_reference)
        return ModificationResult(ModificationOutcome.FAILED, None, result.message)

    async def void(self, request: ModificationRequest) -> ModificationResult:
        """Purslane has no cancel: an order never captured simply lapses."""
        return ModificationResult(ModificationOutcome.SUCCEEDED, request.psp_reference)

    async def refund(self, request: ModificationRequest) -> ModificationResult:
        """Refund (part of) the order's capture."""
        order = await self._order(request.psp_reference)
        capture = order.get("capture")
        capture_id = capture.get("id") if isinstance(capture, Mapping) else None
        if not isinstance(capture_id, str):
            return ModificationResult(ModificationOutcome.FAILED, None, "Nothing was captured.")
        try:
            refund = await self._post(
                f"/v1/captures/{quote(capture_id, safe='')}/refund",
                {"amount": mapper.amount(request.amount, request.currency)},
                request.reference,
            )
        except ProviderError as exc:
            if exc.status != 422:
                raise
            return ModificationResult(ModificationOutcome.FAILED, None, exc.code)
        refund_id = refund.get("id") if isinstance(refund, Mapping) else None
        return ModificationResult(
            ModificationOutcome.SUCCEEDED, refund_id if isinstance(refund_id, str) else None
        )

    async def status(self, reference: str) -> StatusResult:
        return redirect_status(await self.inquire(reference))
