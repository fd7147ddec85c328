"""Purslane: a wallet with redirect approval, in the style of a well-known PayPal-like API.

The merchant creates an order, sends the buyer to the ``approve`` link, and the buyer comes
back to ``return_url`` (approved) or ``cancel_url``. Then the merchant captures the order and
may refund the capture, fully or in parts. Amounts are decimal strings.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kassa.sandbox.clock import iso
from kassa.sandbox.httpserver import ApiError, Handler, Request, Response, add_query
from kassa.sandbox.idempotency import idempotent
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.money import AmountError, format_minor, parse_major
from kassa.sandbox.service import Service
from kassa.sandbox.webhooks import SignedJsonFormat
from kassa.sandbox.world import World

CLIENT_ID = "purslane_client_7TqB2vXe"
CLIENT_SECRET = "purslane_secret_Hx93kLmQ0w"
WEBHOOK_SECRET = "purslane_whsec_c4a1e9f0b37d5286"
CURRENCIES = frozenset({"EUR", "USD", "GBP", "JPY"})
FEE_BPS = 349
FEE_FIXED = {"EUR": "0.35", "USD": "0.49", "GBP": "0.30", "JPY": "40"}
BUYERS = {
    "buyer@purslane.test": "approves; captures succeed",
    "declined@purslane.test": "approves; captures are declined (INSTRUMENT_DECLINED)",
}
DEFAULT_BUYER = "buyer@purslane.test"


@dataclass(eq=False)
class Capture:
    """Money taken from an approved order."""

    id: str
    order_id: str
    amount: int
    fee: int
    created_at: float
    refunded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class Order:
    """A purchase the buyer approves on Purslane's page."""

    id: str
    reference_id: str
    amount: int
    currency: str
    return_url: str
    cancel_url: str
    created_at: float
    status: str = "CREATED"  # CREATED | APPROVED | COMPLETED | CANCELLED
    payer: str | None = None
    payer_id: str | None = None
    capture: Capture | None = None
    declined_captures: int = 0


def _error(status: int, name: str, issue: str, description: str) -> ApiError:
    body = {
        "name": name,
        "message": description,
        "details": [{"issue": issue, "description": description}],
    }
    return ApiError(Response.json(body, status))


class WalletService(Service):
    """Purslane wallet (short name ``wallet``)."""

    name = "wallet"
    title = "Purslane (wallet with redirect approval)"

    def __init__(self, world: World) -> None:
        super().__init__(world, SignedJsonFormat("purslane-signature", WEBHOOK_SECRET))
        self._order_ids = IdFactory(f"{world.seed}/wallet/order", 17)
        self._other_ids = IdFactory(f"{world.seed}/wallet/other", 17)
        self.orders: dict[str, Order] = {}
        self.captures: dict[str, Capture] = {}
        self.by_reference: dict[str, list[Order]] = {}
        self._auth = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        r = self.router
        r.add("POST", "/v1/orders", self._guard(self._create))
        r.add("GET", "/v1/orders", self._keyed(self._find))
        r.add("GET", "/v1/orders/{id}", self._keyed(self._get))
        r.add("POST", "/v1/orders/{id}/capture", self._guard(self._capture))
        r.add("GET", "/v1/captures/{id}", self._keyed(self._get_capture))
        r.add("POST", "/v1/captures/{id}/refund", self._guard(self._refund))
        r.add("GET", "/checkout/{id}", self._page)
        r.add("POST", "/checkout/{id}", self._decide)

    def credentials(self) -> dict[str, str]:
        """HTTP Basic credentials: client id and secret."""
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    def webhook_secret(self) -> str:
        """The secret behind ``Purslane-Signature``."""
        return WEBHOOK_SECRET

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Orders newest first (``reference`` filters by reference_id)."""
        ref = query.get("reference")
        source = self.by_reference.get(ref, []) if ref is not None else self.orders.values()
        return [self._view(o) for o in reversed(list(source))]

    # plumbing

    def _keyed(self, handler: Handler) -> Handler:
        def run(request: Request, params: dict[str, str]) -> Response:
            if request.headers.get("authorization") != self._auth:
                raise _error(401, "AUTHENTICATION_FAILURE", "INVALID_CLIENT", "bad credentials")
            return handler(request, params)

        return run

    def _guard(self, handler: Handler) -> Handler:
        return self._keyed(
            idempotent(
                self.idempotency,
                "purslane-request-id",
                handler,
                lambda: (
                    _error(
                        422,
                        "UNPROCESSABLE_ENTITY",
                        "DUPLICATE_REQUEST_ID",
                        "Purslane-Request-Id reused with a different request",
                    ).response
                ),  # fmt: skip
                lambda r: r,
            )
        )

    def _money(self, raw: Any, currency: str | None = None) -> tuple[int, str]:
        if not isinstance(raw, dict):
            raise _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "amount required")
        code, value = raw.get("currency_code"), raw.get("value")
        if code not in CURRENCIES or (currency is not None and code != currency):
            raise _error(422, "UNPROCESSABLE_ENTITY", "CURRENCY_NOT_SUPPORTED", f"{code}")
        try:
            amount = parse_major(str(value), code)
        except AmountError:
            raise _error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "bad amount") from None
        if amount <= 0:
            raise _error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "amount must be > 0")
        return amount, code

    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", f"no order {order_id}")
        return order

    def _view(self, order: Order) -> dict[str, Any]:
        links = [
            {"rel": "self", "href": f"{self.base_url}/v1/orders/{order.id}", "method": "GET"},
            {"rel": "approve", "href": f"{self.base_url}/checkout/{order.id}", "method": "GET"},
            {
                "rel": "capture",
                "href": f"{self.base_url}/v1/orders/{order.id}/capture",
                "method": "POST",
            },
        ]
        view: dict[str, Any] = {
            "id": order.id,
            "status": order.status,
            "intent": "CAPTURE",
            "reference_id": order.reference_id,
            "amount": self._amount_json(order.amount, order.currency),
            "create_time": iso(order.created_at),
            "payer": {"email_address": order.payer, "payer_id": order.payer_id}
            if order.payer
            else None,
            "links": links,
        }
        if order.capture is not None:
            view["capture"] = self._capture_view(order.capture, order)
        return view

    def _capture_view(self, capture: Capture, order: Order) -> dict[str, Any]:
        status = "COMPLETED"
        if capture.refunded:
            status = "REFUNDED" if capture.refunded == capture.amount else "PARTIALLY_REFUNDED"
        return {
            "id": capture.id,
            "order_id": order.id,
            "status": status,
            "amount": self._amount_json(capture.amount, order.currency),
            "seller_receivable_breakdown": {
                "gross_amount": self._amount_json(capture.amount, order.currency),
                "purslane_fee": self._amount_json(capture.fee, order.currency),
                "net_amount": self._amount_json(capture.amount - capture.fee, order.currency),
            },
            "refunded_amount": self._amount_json(capture.refunded, order.currency),
            "refunds": capture.refunds,
            "create_time": iso(capture.created_at),
        }

    @staticmethod
    def _amount_json(amount: int, currency: str) -> dict[str, str]:
        return {"currency_code": currency, "value": format_minor(amount, currency)}

    # API

    def _create(self, request: Request, _: dict[str, str]) -> Response:
        body = self.json_body(
            request, _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "bad JSON").response
        )
        amount, currency = self._money(body.get("amount"))
        reference = body.get("reference_id")
        return_url, cancel_url = body.get("return_url"), body.get("cancel_url")
        if not isinstance(reference, str) or not 0 < len(reference) <= 127:
            raise _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "reference_id")
        if not isinstance(return_url, str) or not isinstance(cancel_url, str):
            raise _error(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "return_url")
        order = Order(
            id=self._order_ids.next(),
            reference_id=reference,
            amount=amount,
            currency=currency,
            return_url=return_url,
            cancel_url=cancel_url,
            created_at=self.clock.now(),
        )
        self.orders[order.id] = order
        self.by_reference.setdefault(reference, []).append(order)
        return Response.json(self._view(order), 201)

    def _find(self, request: Request, _: dict[str, str]) -> Response:
        reference = request.query().get("reference_id", "")
        return Response.json(
            {"data": [self._view(o) for o in self.by_reference.get(reference, [])]}
        )

    def _get(self, _: Request, params: dict[str, str]) -> Response:
        return Response.json(self._view(self._order(params["id"])))

    def _capture(self, _: Request, params: dict[str, str]) -> Response:
        order = self._order(params["id"])
        if order.status == "COMPLETED":
            raise _error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", "already captured")
        if order.status != "APPROVED":
            raise _error(
                422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED", "buyer has not approved"
            )
        if order.payer == "declined@purslane.test":
            order.declined_captures += 1
            self._emit("PAYMENT.CAPTURE.DENIED", self._view(order))
            raise _error(
                422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED",
                "The buyer's funding instrument was declined",
            )  # fmt: skip
        fee = (order.amount * FEE_BPS + 5_000) // 10_000 + parse_major(
            FEE_FIXED[order.currency], order.currency
        )
        capture = Capture(self._other_ids.next(), order.id, order.amount, fee, self.clock.now())
        order.capture = capture
        order.status = "COMPLETED"
        self.captures[capture.id] = capture
        view = self._view(order)
        self._emit("PAYMENT.CAPTURE.COMPLETED", view["capture"])
        return Response.json(view, 201)

    def _get_capture(self, _: Request, params: dict[str, str]) -> Response:
        capture = self.captures.get(params["id"])
        if capture is None:
            raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "no such capture")
        return Response.json(self._capture_view(capture, self.orders[capture.order_id]))

    def _refund(self, request: Request, params: dict[str, str]) -> Response:
        capture = self.captures.get(params["id"])
        if capture is None:
            raise _error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "no such capture")
        order = self.orders[capture.order_id]
        body = {} if not request.body.strip() else self.json_body(
            request, _error(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "bad JSON").response
        )  # fmt: skip
        remaining = capture.amount - capture.refunded
        amount = remaining
        if body.get("amount") is not None:
            amount, _ = self._money(body["amount"], order.currency)
        if remaining == 0 or amount > remaining:
            raise _error(
                422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED",
                "refund exceeds the captured amount not yet refunded",
            )  # fmt: skip
        capture.refunded += amount
        refund = {
            "id": self._other_ids.next(),
            "capture_id": capture.id,
            "status": "COMPLETED",
            "amount": self._amount_json(amount, order.currency),
            "create_time": iso(self.clock.now()),
        }
        capture.refunds.append(refund)
        self._emit("PAYMENT.CAPTURE.REFUNDED", refund)
        return Response.json(refund, 201)

    # the buyer's approval page

    def _page(self, _: Request, params: dict[str, str]) -> Response:
        order = self._order(params["id"])
        if order.status != "CREATED":
            return Response.html(_PAGE.format(body=f"<p>Order {order.status.lower()}.</p>"))
        options = "".join(
            f'<option value="{html.escape(b)}">{html.escape(b)} — {html.escape(d)}</option>'
            for b, d in BUYERS.items()
        )
        amount = html.escape(format_minor(order.amount, order.currency) + " " + order.currency)
        body = (
            f"<p>Pay {amount} to the merchant.</p>"
            f'<form method="post" action="/checkout/{html.escape(order.id)}">'
            f'<label>Buyer <select name="buyer">{options}</select></label> '
            '<button type="submit" name="action" value="approve">Approve</button> '
            '<button type="submit" name="action" value="cancel">Cancel</button></form>'
        )
        return Response.html(_PAGE.format(body=body))

    def _decide(self, request: Request, params: dict[str, str]) -> Response:
        order = self._order(params["id"])
        try:
            form = request.form()
        except ValueError:
            form = {}
        action = form.get("action")
        if action not in ("approve", "cancel"):
            return Response.html(_PAGE.format(body="<p>Choose approve or cancel.</p>"), 400)
        if order.status == "CREATED":
            if action == "approve":
                order.status = "APPROVED"
                order.payer = form.get("buyer") or DEFAULT_BUYER
                order.payer_id = self._other_ids.next()[:13]
                self._emit("CHECKOUT.ORDER.APPROVED", self._view(order))
            else:
                order.status = "CANCELLED"
        if order.status == "CANCELLED":
            return Response.redirect(add_query(order.cancel_url, {"token": order.id}))
        return Response.redirect(
            add_query(order.return_url, {"token": order.id, "PayerID": order.payer_id or ""})
        )

    def _emit(self, event_type: str, resource: dict[str, Any]) -> None:
        if self.webhooks.enabled:
            event_id = "WH-" + self._other_ids.next()
            self.webhooks.emit(
                event_id,
                {
                    "id": event_id,
                    "event_type": event_type,
                    "create_time": iso(self.clock.now()),
                    "resource": resource,
                },
            )


_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Purslane</title></head>"
    "<body><h1>Purslane</h1>{body}</body></html>"
)
