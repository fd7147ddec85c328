"""Deferro: buy now, pay later, with an approval redirect and deferred settlement.

The merchant opens a checkout and sends the customer to ``redirect_url``. Deferro runs a
credit check when the customer approves: ``declined@deferro.test`` is always declined. An
authorised checkout is captured when the goods ship; Deferro pays the merchant
``settlement_delay_s`` later (default 7 days of world time), less its fee and any refunds.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kassa.sandbox.clock import DAY, iso
from kassa.sandbox.httpserver import ApiError, Handler, Request, Response, add_query
from kassa.sandbox.idempotency import idempotent
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.money import format_minor, parse_major
from kassa.sandbox.service import Service
from kassa.sandbox.webhooks import SignedJsonFormat
from kassa.sandbox.world import World

API_KEY = "deferro_test_sk_N8cV3rTy6"
WEBHOOK_SECRET = "deferro_whsec_5b0d2e8f71a946c3"
CURRENCIES = frozenset({"EUR", "USD", "GBP", "SEK"})
FEE_BPS = 329
FEE_FIXED = {"EUR": "0.30", "USD": "0.30", "GBP": "0.25", "SEK": "3.00"}
DECLINED_CUSTOMER = "declined@deferro.test"
MAX_AMOUNT = 10**10


@dataclass(eq=False)
class Checkout:
    """One BNPL purchase from approval to settlement."""

    id: str
    reference: str
    amount: int
    currency: str
    email: str
    return_url: str
    cancel_url: str
    created_at: float
    status: str = "pending"  # pending|authorized|declined|canceled|captured|settled
    captured: int = 0
    refunded: int = 0
    captured_at: float | None = None
    refunds: list[dict[str, Any]] = field(default_factory=list)
    settlement: dict[str, Any] | None = None


def _error(status: int, code: str, message: str) -> ApiError:
    return ApiError(Response.json({"error": {"code": code, "message": message}}, status))


class BnplService(Service):
    """Deferro (short name ``bnpl``)."""

    name = "bnpl"
    title = "Deferro (buy now, pay later)"
    default_settings = {"settlement_delay_s": 7 * DAY}

    def __init__(self, world: World) -> None:
        super().__init__(world, SignedJsonFormat("deferro-signature", WEBHOOK_SECRET))
        self._ids = IdFactory(f"{world.seed}/bnpl", 14, prefix="chk_")
        self._other_ids = IdFactory(f"{world.seed}/bnpl/other", 14)
        self.checkouts: dict[str, Checkout] = {}
        self.by_reference: dict[str, list[Checkout]] = {}
        r = self.router
        r.add("POST", "/v1/checkouts", self._guard(self._create))
        r.add("GET", "/v1/checkouts", self._keyed(self._find))
        r.add("GET", "/v1/checkouts/{id}", self._keyed(self._get))
        r.add("POST", "/v1/checkouts/{id}/capture", self._guard(self._capture))
        r.add("POST", "/v1/checkouts/{id}/cancel", self._guard(self._cancel))
        r.add("POST", "/v1/checkouts/{id}/refunds", self._guard(self._refund))
        r.add("GET", "/pay/{id}", self._page)
        r.add("POST", "/pay/{id}", self._decide)

    def credentials(self) -> dict[str, str]:
        """Bearer API key."""
        return {"api_key": API_KEY}

    def webhook_secret(self) -> str:
        """The secret behind ``Deferro-Signature``."""
        return WEBHOOK_SECRET

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Checkouts newest first (``reference`` filters)."""
        ref = query.get("reference")
        source = self.by_reference.get(ref, []) if ref is not None else self.checkouts.values()
        return [self._view(c) for c in reversed(list(source))]

    # plumbing

    def _keyed(self, handler: Handler) -> Handler:
        def run(request: Request, params: dict[str, str]) -> Response:
            if request.headers.get("authorization") != f"Bearer {API_KEY}":
                raise _error(401, "unauthorized", "missing or wrong bearer API key")
            return handler(request, params)

        return run

    def _guard(self, handler: Handler) -> Handler:
        return self._keyed(
            idempotent(
                self.idempotency,
                "idempotency-key",
                handler,
                lambda: (
                    _error(
                        409, "idempotency_key_reused", "Idempotency-Key reused with another request"
                    ).response
                ),
                lambda r: r.with_header("idempotent-replayed", "true"),
            )
        )

    def _body(self, request: Request) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        return self.json_body(request, _error(400, "invalid_json", "body must be JSON").response)

    def _checkout(self, checkout_id: str) -> Checkout:
        checkout = self.checkouts.get(checkout_id)
        if checkout is None:
            raise _error(404, "not_found", f"no checkout {checkout_id}")
        return checkout

    def _view(self, c: Checkout) -> dict[str, Any]:
        return {
            "id": c.id,
            "object": "checkout",
            "status": c.status,
            "reference": c.reference,
            "amount": c.amount,
            "currency": c.currency,
            "captured_amount": c.captured,
            "refunded_amount": c.refunded,
            "customer": {"email": c.email},
            "redirect_url": f"{self.base_url}/pay/{c.id}",
            "created_at": iso(c.created_at),
            "captured_at": iso(c.captured_at) if c.captured_at else None,
            "settlement_due_at": iso(c.captured_at + self.settings["settlement_delay_s"])
            if c.captured_at and c.settlement is None
            else None,
            "refunds": c.refunds,
            "settlement": c.settlement,
        }

    def _optional_amount(self, body: dict[str, Any], default: int) -> int:
        amount = body.get("amount", default)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _error(400, "invalid_amount", "amount must be a positive integer (minor units)")
        return amount

    # API

    def _create(self, request: Request, _: dict[str, str]) -> Response:
        body = self._body(request)
        amount, currency = body.get("amount"), body.get("currency")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount < MAX_AMOUNT:
            raise _error(400, "invalid_amount", "amount must be a positive integer (minor units)")
        if currency not in CURRENCIES:
            raise _error(
                400, "unsupported_currency", f"currency must be one of {sorted(CURRENCIES)}"
            )
        reference = body.get("reference")
        if not isinstance(reference, str) or not 0 < len(reference) <= 80:
            raise _error(400, "invalid_reference", "reference must be 1-80 characters")
        return_url, cancel_url = body.get("return_url"), body.get("cancel_url")
        if not isinstance(return_url, str) or not isinstance(cancel_url, str):
            raise _error(400, "missing_urls", "return_url and cancel_url are required")
        customer = body.get("customer")
        email = customer.get("email") if isinstance(customer, dict) else None
        if not isinstance(email, str) or "@" not in email:
            raise _error(400, "invalid_customer", "customer.email is required")
        checkout = Checkout(
            id=self._ids.next(),
            reference=reference,
            amount=amount,
            currency=currency,
            email=email,
            return_url=return_url,
            cancel_url=cancel_url,
            created_at=self.clock.now(),
        )
        self.checkouts[checkout.id] = checkout
        self.by_reference.setdefault(reference, []).append(checkout)
        return Response.json(self._view(checkout), 201)

    def _find(self, request: Request, _: dict[str, str]) -> Response:
        found = self.by_reference.get(request.query().get("reference", ""), [])
        return Response.json({"data": [self._view(c) for c in found]})

    def _get(self, _: Request, params: dict[str, str]) -> Response:
        return Response.json(self._view(self._checkout(params["id"])))

    def _capture(self, request: Request, params: dict[str, str]) -> Response:
        checkout = self._checkout(params["id"])
        amount = self._optional_amount(self._body(request), checkout.amount)
        if checkout.status != "authorized":
            raise _error(409, "invalid_state", f"cannot capture a {checkout.status} checkout")
        if amount > checkout.amount:
            raise _error(400, "amount_too_large", "capture exceeds the authorized amount")
        checkout.status = "captured"
        checkout.captured = amount
        checkout.captured_at = self.clock.now()
        self.scheduler.after(
            self.settings["settlement_delay_s"], lambda: self._settle(checkout), "settlement"
        )
        self._emit("checkout.captured", checkout)
        return Response.json(self._view(checkout))

    def _cancel(self, _: Request, params: dict[str, str]) -> Response:
        checkout = self._checkout(params["id"])
        if checkout.status not in ("pending", "authorized"):
            raise _error(409, "invalid_state", f"cannot cancel a {checkout.status} checkout")
        checkout.status = "canceled"
        self._emit("checkout.canceled", checkout)
        return Response.json(self._view(checkout))

    def _refund(self, request: Request, params: dict[str, str]) -> Response:
        checkout = self._checkout(params["id"])
        remaining = checkout.captured - checkout.refunded
        amount = self._optional_amount(self._body(request), remaining or 1)
        if checkout.status not in ("captured", "settled"):
            raise _error(409, "invalid_state", f"cannot refund a {checkout.status} checkout")
        if amount > remaining:
            raise _error(400, "amount_too_large", "refund exceeds the captured amount left")
        checkout.refunded += amount
        refund = {
            "id": "rf_" + self._other_ids.next(),
            "amount": amount,
            "currency": checkout.currency,
            "status": "succeeded",
            "created_at": iso(self.clock.now()),
            # Refunds after the payout come out of the next one.
            "deducted_from": "next_settlement" if checkout.settlement else "this_settlement",
        }
        checkout.refunds.append(refund)
        self._emit("refund.succeeded", checkout, refund=refund)
        return Response.json(refund, 201)

    def _settle(self, checkout: Checkout) -> None:
        gross = checkout.captured - checkout.refunded
        fee = (checkout.captured * FEE_BPS + 5_000) // 10_000 + parse_major(
            FEE_FIXED[checkout.currency], checkout.currency
        )
        checkout.status = "settled"
        checkout.settlement = {
            "id": "st_" + self._other_ids.next(),
            "gross": gross,
            "fee": fee,
            "net": gross - fee,
            "currency": checkout.currency,
            "net_display": format_minor(gross - fee, checkout.currency),
            "paid_at": iso(self.clock.now()),
        }
        self._emit("settlement.paid", checkout)

    # the customer's approval page

    def _page(self, _: Request, params: dict[str, str]) -> Response:
        c = self._checkout(params["id"])
        if c.status != "pending":
            return Response.html(_PAGE.format(body=f"<p>Checkout {html.escape(c.status)}.</p>"))
        amount = html.escape(f"{format_minor(c.amount, c.currency)} {c.currency}")
        body = (
            f"<p>Pay {amount} in 4 instalments, as {html.escape(c.email)}.</p>"
            f'<form method="post" action="/pay/{html.escape(c.id)}">'
            '<button type="submit" name="decision" value="approve">Approve plan</button> '
            '<button type="submit" name="decision" value="decline">Decline</button></form>'
        )
        return Response.html(_PAGE.format(body=body))

    def _decide(self, request: Request, params: dict[str, str]) -> Response:
        c = self._checkout(params["id"])
        try:
            decision = request.form().get("decision")
        except ValueError:
            decision = None
        if decision not in ("approve", "decline"):
            return Response.html(_PAGE.format(body="<p>Choose approve or decline.</p>"), 400)
        if c.status == "pending":
            approved = decision == "approve" and c.email != DECLINED_CUSTOMER
            c.status = "authorized" if approved else "declined"
            self._emit("checkout.authorized" if approved else "checkout.declined", c)
        target = c.return_url if c.status not in ("declined", "canceled") else c.cancel_url
        return Response.redirect(add_query(target, {"checkout_id": c.id, "status": c.status}))

    def _emit(self, event_type: str, checkout: Checkout, **extra: Any) -> None:
        if self.webhooks.enabled:
            event_id = "evt_" + self._other_ids.next()
            self.webhooks.emit(
                event_id,
                {
                    "id": event_id,
                    "type": event_type,
                    "created": int(self.clock.now()),
                    "data": {"checkout": self._view(checkout), **extra},
                },
            )


_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Deferro</title></head>"
    "<body><h1>Deferro</h1>{body}</body></html>"
)
