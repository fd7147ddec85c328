"""Arvona Checkout's HTTP API: JSON, an API-key header and ``Idempotency-Key`` on every POST."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from kassa.sandbox.acquirer_a.codes import (
    DISPUTE_EVENTS,
    EVENT_CODES,
    MODIFICATION_FAILURES,
    REFUSALS,
    RESULT_CODES,
    SETTLEMENT_COLUMNS,
    SETTLEMENT_TYPES,
    error,
)
from kassa.sandbox.acquirer_a.notifications import ArvonaNotificationFormat, item_signature
from kassa.sandbox.acquiring import AcquirerService
from kassa.sandbox.cards import Outcome
from kassa.sandbox.clock import iso
from kassa.sandbox.fees import FeeSchedule
from kassa.sandbox.httpserver import ApiError, Handler, Request, Response
from kassa.sandbox.idempotency import idempotent
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.payments import (
    AUTHORISED,
    ERROR,
    PENDING_AUTHENTICATION,
    REFUSED,
    Dispute,
    Modification,
    Payment,
)
from kassa.sandbox.settlement import SettlementReport
from kassa.sandbox.threeds import ThreeDSService
from kassa.sandbox.world import World

API_KEY = "arvona_test_AQEmhmfuXNWTK0Qc"
MERCHANT_ACCOUNT = "KassaSandboxECOM"
HMAC_KEY = "9F3C1A7E5B2D4C6E8A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6F7A8B9C0D1E2F"
MAX_AMOUNT = 10**12

_UNAUTHORIZED = error(401, "000", "HTTP Status Response - Unauthorized", "security").response


class ArvonaService(AcquirerService):
    """Arvona Checkout (short name ``acquirer_a``)."""

    name = "acquirer_a"
    title = "Arvona Checkout (JSON card acquirer)"
    currencies = frozenset(
        {"EUR", "USD", "GBP", "CHF", "SEK", "DKK", "NOK", "PLN", "CZK", "AUD", "CAD", "JPY",
         "KWD", "BHD", "JOD", "NZD", "HUF", "SGD", "HKD", "BRL", "INR", "ZAR", "KRW"}
    )  # fmt: skip
    brands = frozenset({"visa", "mastercard", "amex", "maestro", "diners"})
    fees = FeeSchedule(
        percent_bps={"*": 120, "amex": 290, "maestro": 90},
        capture_fixed={
            "EUR": "0.10", "USD": "0.12", "GBP": "0.10", "CHF": "0.12", "SEK": "1.20",
            "DKK": "0.80", "NOK": "1.20", "PLN": "0.45", "CZK": "2.50", "AUD": "0.15",
            "CAD": "0.15", "JPY": "15", "KWD": "0.035", "BHD": "0.045", "JOD": "0.080",
            "NZD": "0.15", "HUF": "40", "SGD": "0.15", "HKD": "0.90",
            "BRL": "0.50", "INR": "8.00", "ZAR": "2.00", "KRW": "150",
        },
        refund_fixed={},
        chargeback_fixed={
            "EUR": "15.00", "USD": "17.00", "GBP": "13.00", "CHF": "16.00", "SEK": "170.00",
            "DKK": "110.00", "NOK": "170.00", "PLN": "65.00", "CZK": "370.00",
            "AUD": "25.00", "CAD": "22.00", "JPY": "2400", "KWD": "5.000", "BHD": "6.000",
        },
    )  # fmt: skip
    default_settings = {
        **AcquirerService.default_settings,
        "settle_days": 2,
        "modification_delay_s": 0.5,
    }

    def __init__(self, world: World, threeds: ThreeDSService) -> None:
        super().__init__(
            world, ArvonaNotificationFormat(), threeds, IdFactory(f"{world.seed}/arvona", 16)
        )
        self._by_authentication: dict[str, Payment] = {}
        r = self.router
        r.add("POST", "/v1/payments", self._mutating(self._authorise))
        r.add("POST", "/v1/payments/details", self._mutating(self._details))
        r.add("GET", "/v1/payments", self._with_key(self._find_by_reference))
        r.add("GET", "/v1/payments/{psp}", self._with_key(self._get_payment))
        r.add("POST", "/v1/payments/{psp}/captures", self._mutating(self._modify("capture")))
        r.add("POST", "/v1/payments/{psp}/refunds", self._mutating(self._modify("refund")))
        r.add("POST", "/v1/payments/{psp}/cancels", self._mutating(self._modify("cancel")))
        r.add("GET", "/v1/disputes/{id}", self._with_key(self._get_dispute))
        r.add("POST", "/v1/disputes/{id}/defend", self._mutating(self._defend))
        r.add("GET", "/v1/reports", self._with_key(self._list_reports))
        r.add("GET", "/v1/reports/settlement", self._with_key(self._settlement_report))

    def credentials(self) -> dict[str, str]:
        """The ``X-API-Key`` header value and the merchant account to name in requests."""
        return {"api_key": API_KEY, "merchant_account": MERCHANT_ACCOUNT}

    def webhook_secret(self) -> str:
        """The hex HMAC key that signs notification items."""
        return HMAC_KEY

    def api_error_response(self, status: int) -> Response:
        """Arvona's JSON error for an injected 500 or 429."""
        if status == 429:
            body = {"status": 429, "errorCode": "429", "message": "Too many requests",
                    "errorType": "throttling"}  # fmt: skip
            return Response.json(body, 429, {"retry-after": "1"})
        body = {"status": status, "errorCode": "905", "message": "Internal error",
                "errorType": "internal"}  # fmt: skip
        return Response.json(body, status)

    # request plumbing

    def _with_key(self, handler: Handler) -> Handler:
        def run(request: Request, params: dict[str, str]) -> Response:
            if request.headers.get("x-api-key") != API_KEY:
                raise ApiError(_UNAUTHORIZED)
            return handler(request, params)

        return run

    def _mutating(self, handler: Handler) -> Handler:
        """Authenticate, and replay the first answer for a repeated ``Idempotency-Key``."""
        return self._with_key(
            idempotent(
                self.idempotency,
                "idempotency-key",
                handler,
                lambda: (
                    error(
                        422, "704", "Idempotency-Key was already used with a different request"
                    ).response
                ),
                lambda r: r.with_header("idempotent-replayed", "true"),
            )
        )

    def _body(self, request: Request) -> dict[str, Any]:
        try:
            data = request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise error(400, "702", "Unable to parse the request body as a JSON object")
        if data.get("merchantAccount", MERCHANT_ACCOUNT) != MERCHANT_ACCOUNT:
            raise error(403, "901", "Invalid Merchant Account", "security")
        return data

    def _amount(self, raw: Any) -> tuple[int, str]:
        if not isinstance(raw, dict):
            raise error(422, "100", "Required field 'amount' is not provided.")
        value, currency = raw.get("value"), raw.get("currency")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_AMOUNT:
            raise error(422, "137", "Invalid amount specified")
        if currency not in self.currencies:
            raise error(422, "138", f"Unsupported currency specified: {currency}")
        return value, currency

    def _payment(self, psp: str) -> Payment:
        payment = self.payments.get(psp)
        if payment is None:
            raise error(422, "167", f"Original pspReference {psp} not found")
        return payment

    # authorisation

    def _authorise(self, request: Request, _: dict[str, str]) -> Response:
        body = self._body(request)
        amount, currency = self._amount(body.get("amount"))
        reference = body.get("reference")
        if not isinstance(reference, str) or not 0 < len(reference) <= 80:
            raise error(422, "130", "Reference must be 1 to 80 characters")
        method = body.get("paymentMethod")
        if not isinstance(method, dict) or method.get("type", "scheme") != "scheme":
            raise error(422, "100", "paymentMethod of type 'scheme' is required")
        number = method.get("number")
        if not isinstance(number, str):
            raise error(422, "100", "Required field 'paymentMethod.number' is not provided.")
        number = number.replace(" ", "")
        exp_month, exp_year = _int(method.get("expiryMonth")), _int(method.get("expiryYear"))
        if exp_month is None or not 1 <= exp_month <= 12 or exp_year is None or exp_year < 2000:
            raise error(422, "129", "Expiry Date Invalid")
        cvc = method.get("cvc")
        if cvc is not None and not isinstance(cvc, str):
            raise error(422, "100", "paymentMethod.cvc must be a string")
        interaction = body.get("shopperInteraction", "Ecommerce")
        if interaction not in ("Ecommerce", "ContAuth"):
            raise error(422, "100", "shopperInteraction must be Ecommerce or ContAuth")
        delay = body.get("captureDelayHours")
        if delay is not None and (_int(delay) is None or not isinstance(delay, int) or delay < 0):
            raise error(422, "100", "captureDelayHours must be a non-negative integer")
        token = body.get("threeDSResult")
        return_url = body.get("returnUrl")
        check = self.check_card(
            number,
            exp_month,
            exp_year,
            cvc,
            amount=amount,
            currency=currency,
            recurring=interaction == "ContAuth",
            threeds_result=token if isinstance(token, str) else None,
        )
        if check.outcome is Outcome.INVALID_NUMBER:
            raise error(422, "101", "Invalid card number")
        if check.outcome is Outcome.UNSUPPORTED_BRAND:
            raise error(422, "905", "Payment details are not supported")
        if check.outcome is Outcome.AUTHENTICATION_REQUIRED and not isinstance(return_url, str):
            raise error(422, "100", "Required field 'returnUrl' is not provided.")
        payment = self.record(
            reference,
            amount,
            currency,
            check,
            recurring=interaction == "ContAuth",
            extra={"capture_delay_hours": delay},
        )
        if payment.status == PENDING_AUTHENTICATION:
            assert isinstance(return_url, str)
            auth = self.threeds.begin(
                number, amount, currency, return_url, reference,
                recurring=interaction == "ContAuth",
            )  # fmt: skip
            payment.authentication_id = auth.id
            self._by_authentication[auth.id] = payment
        else:
            self._authorisation_done(payment)
        return Response.json(self._result(payment))

    def _details(self, request: Request, _: dict[str, str]) -> Response:
        body = self._body(request)
        details = body.get("details")
        token = details.get("threeDSResult") if isinstance(details, dict) else None
        if not isinstance(token, str):
            raise error(422, "100", "Required field 'details.threeDSResult' is not provided.")
        payment = None
        psp = body.get("pspReference")
        if isinstance(psp, str):
            payment = self._payment(psp)
        else:
            payload = self.threeds.verify(token) or {}
            payment = self._by_authentication.get(str(payload.get("authentication_id")))
        if payment is None:
            raise error(422, "167", "No payment waits for this authentication result")
        if payment.status == PENDING_AUTHENTICATION:
            self.complete_authentication(payment, token)
            self._authorisation_done(payment)
        return Response.json(self._result(payment))

    def _authorisation_done(self, payment: Payment) -> None:
        if self.webhooks.enabled:
            self._notify(
                "AUTHORISATION",
                payment,
                payment.id,
                None,
                payment.amount,
                payment.status == AUTHORISED,
                "" if payment.status == AUTHORISED else REFUSALS[payment.outcome][0],
                {"authCode": payment.auth_code} if payment.auth_code else {},
            )
        delay = payment.extra.get("capture_delay_hours")
        if payment.status == AUTHORISED and delay is not None:
            mod = self.new_modification(payment, "capture", payment.amount, payment.reference)
            if delay == 0:
                self.apply(payment, mod)
            else:
                self.scheduler.after(delay * 3600, lambda: self.apply(payment, mod), "capture")

    def _result(self, payment: Payment) -> dict[str, Any]:
        result: dict[str, Any] = {
            "pspReference": payment.id,
            "resultCode": RESULT_CODES[payment.status],
            "merchantReference": payment.reference,
            "amount": {"value": payment.amount, "currency": payment.currency},
        }
        card = payment.card
        if payment.status == AUTHORISED and card is not None:
            result["additionalData"] = {
                "authCode": payment.auth_code,
                "cardBin": card.bin,
                "cardSummary": card.last4,
                "cardIssuingCountry": card.country or "unknown",
                "fundingSource": card.funding.upper(),
                "paymentMethod": card.brand,
            }
        elif payment.status in (REFUSED, ERROR):
            reason, code, raw = REFUSALS[payment.outcome]
            result["refusalReason"] = reason
            result["refusalReasonCode"] = code
            result["additionalData"] = {"refusalReasonRaw": raw}
        elif payment.status == PENDING_AUTHENTICATION and payment.authentication_id:
            auth = self.threeds.authentications[payment.authentication_id]
            result["action"] = {
                "type": "redirect",
                "method": "GET",
                "url": self.threeds.challenge_url(auth),
                "paymentMethodType": "scheme",
            }
        return result

    # modifications

    def _modify(self, kind: str) -> Handler:
        def run(request: Request, params: dict[str, str]) -> Response:
            payment = self._payment(params["psp"])
            body = self._body(request)
            if kind == "cancel":
                amount = 0
            else:
                amount, currency = self._amount(body.get("amount"))
                if currency != payment.currency:
                    raise error(422, "138", f"Currency must be {payment.currency}")
            reference = body.get("reference", "")
            if not isinstance(reference, str) or len(reference) > 80:
                raise error(422, "130", "Reference must be at most 80 characters")
            mod = self.new_modification(payment, kind, amount, reference)
            self.scheduler.after(
                self.settings["modification_delay_s"], lambda: self.apply(payment, mod), kind
            )
            answer: dict[str, Any] = {
                "merchantAccount": MERCHANT_ACCOUNT,
                "paymentPspReference": payment.id,
                "pspReference": mod.id,
                "reference": reference,
                "status": "received",
            }
            if kind != "cancel":
                answer["amount"] = {"value": amount, "currency": payment.currency}
            return Response.json(answer, 201)

        return run

    def on_modification(self, payment: Payment, mod: Modification) -> None:
        """Send CAPTURE / REFUND / CANCELLATION with ``success`` true or false."""
        if not self.webhooks.enabled:
            return
        ok = mod.status == "succeeded"
        self._notify(
            EVENT_CODES[mod.kind],
            payment,
            mod.id,
            payment.id,
            mod.amount if mod.kind != "cancel" else payment.amount,
            ok,
            "" if ok else MODIFICATION_FAILURES[mod.reason or ""],
            {"modificationReference": mod.reference} if mod.reference else {},
        )

    # disputes

    def on_dispute(self, payment: Payment, dispute: Dispute) -> None:
        """Send CHARGEBACK when opened, CHARGEBACK_REVERSED when won, CHARGEBACK_LOST when lost."""
        if not self.webhooks.enabled:
            return
        self._notify(
            DISPUTE_EVENTS.get(dispute.status, "CHARGEBACK"),
            payment,
            dispute.id,
            payment.id,
            dispute.amount,
            True,
            "Fraud",
            {
                "chargebackReasonCode": "10.4",
                "disputeStatus": dispute.status,
                "defensePeriodEndsAt": iso(dispute.due_by),
            },
        )

    def _get_dispute(self, _: Request, params: dict[str, str]) -> Response:
        found = self.disputes.get(params["id"])
        if found is None:
            raise error(422, "167", f"Dispute {params['id']} not found")
        return Response.json(_dispute_view(found[1]))

    def _defend(self, request: Request, params: dict[str, str]) -> Response:
        found = self.disputes.get(params["id"])
        if found is None:
            raise error(422, "167", f"Dispute {params['id']} not found")
        evidence = self._body(request).get("evidence")
        if not isinstance(evidence, str) or not evidence:
            raise error(422, "100", "Required field 'evidence' is not provided.")
        payment, dispute = found
        if not self.submit_evidence(payment, dispute, evidence):
            return Response.json(
                {"disputeServiceResult": {"success": False,
                                          "errorMessage": f"Dispute is {dispute.status}"}}
            )  # fmt: skip
        return Response.json({"disputeServiceResult": {"success": True}})

    # inquiries

    def _find_by_reference(self, request: Request, _: dict[str, str]) -> Response:
        reference = request.query().get("merchantReference")
        if not reference:
            raise error(422, "100", "Query parameter 'merchantReference' is required")
        payments = self.by_reference.get(reference, [])
        return Response.json({"data": [self._status_view(p) for p in payments]})

    def _get_payment(self, _: Request, params: dict[str, str]) -> Response:
        return Response.json(self._status_view(self._payment(params["psp"])))

    def _status_view(self, payment: Payment) -> dict[str, Any]:
        view = self._result(payment)
        view["capturedAmount"] = payment.captured
        view["refundedAmount"] = payment.refunded
        view["modifications"] = [
            {
                "pspReference": m.id,
                "type": EVENT_CODES[m.kind],
                "status": {"received": "received", "succeeded": "success"}.get(m.status, "failed"),
                "amount": {"value": m.amount, "currency": payment.currency},
                "reference": m.reference,
                "reason": MODIFICATION_FAILURES.get(m.reason or ""),
            }
            for m in payment.modifications
        ]
        view["disputes"] = [_dispute_view(d) for d in payment.disputes]
        return view

    # settlement

    def render_settlement(self, report: SettlementReport) -> bytes:
        """One row per item; amounts in minor units, refunds and chargebacks negative."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(SETTLEMENT_COLUMNS)
        for item in report.rows:
            writer.writerow(
                [
                    MERCHANT_ACCOUNT, report.batch, item.payment_id, item.item_id,
                    item.merchant_reference, SETTLEMENT_TYPES[item.kind], iso(item.booked_at),
                    item.settles_on.isoformat(), item.brand, item.currency, item.gross,
                    item.fee, item.net,
                ]
            )  # fmt: skip
        return out.getvalue().encode()

    def on_report(self, report: SettlementReport) -> None:
        """Send REPORT_AVAILABLE with the download URL in ``reason``."""
        if not self.webhooks.enabled:
            return
        item: dict[str, Any] = {
            "eventCode": "REPORT_AVAILABLE",
            "success": "true",
            "eventDate": iso(report.created_at),
            "merchantAccountCode": MERCHANT_ACCOUNT,
            "pspReference": f"settlement_detail_report_batch_{report.batch}.csv",
            "merchantReference": "",
            "amount": {"value": 0, "currency": "EUR"},
            "reason": self._report_url(report.day),
            "additionalData": {"settlementDate": report.day.isoformat()},
        }
        item["additionalData"]["hmacSignature"] = item_signature(item, HMAC_KEY)
        self.webhooks.emit(f"REPORT_AVAILABLE:{report.batch}", item)

    def _report_url(self, day: date) -> str:
        return f"{self.base_url}/v1/reports/settlement?date={day.isoformat()}"

    def _list_reports(self, _: Request, __: dict[str, str]) -> Response:
        return Response.json(
            {
                "data": [
                    {"date": r.day.isoformat(), "batch": r.batch, "url": self._report_url(r.day)}
                    for r in self.settlement.reports.values()
                ]
            }
        )

    def _settlement_report(self, request: Request, _: dict[str, str]) -> Response:
        raw = request.query().get("date", "")
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise error(422, "100", "date must be YYYY-MM-DD") from None
        report = self.settlement.reports.get(day)
        if report is None:
            raise error(404, "404", f"No settlement report for {raw} (yet)", "not_found")
        return Response(200, report.csv, "text/csv; charset=utf-8")

    # notifications

    def _notify(
        self,
        event_code: str,
        payment: Payment,
        psp: str,
        original: str | None,
        amount: int,
        success: bool,
        reason: str,
        additional: dict[str, str],
    ) -> None:
        item: dict[str, Any] = {
            "eventCode": event_code,
            "success": "true" if success else "false",
            "eventDate": iso(self.clock.now()),
            "merchantAccountCode": MERCHANT_ACCOUNT,
            "pspReference": psp,
            "merchantReference": payment.reference,
            "amount": {"value": amount, "currency": payment.currency},
            "reason": reason,
            "paymentMethod": payment.card.brand if payment.card else "",
        }
        if original is not None:
            item["originalReference"] = original
        item["additionalData"] = {**additional, "hmacSignature": item_signature(item, HMAC_KEY)}
        self.webhooks.emit(f"{event_code}:{psp}", item)


def _dispute_view(dispute: Dispute) -> dict[str, Any]:
    return {
        "disputePspReference": dispute.id,
        "paymentPspReference": dispute.payment_id,
        "status": dispute.status,
        "reason": dispute.reason,
        "amount": {"value": dispute.amount, "currency": dispute.currency},
        "defensePeriodEndsAt": iso(dispute.due_by),
        "evidence": dispute.evidence,
    }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
