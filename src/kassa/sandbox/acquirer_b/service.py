"""Beltrane Gateway's HTTP API: form-encoded name-value pairs and numeric RESULT codes.

Everything business-level answers HTTP 200; the outcome is in ``RESULT`` (0 = approved).
``X-VPS-REQUEST-ID`` makes a call safe to retry: a repeat gets the first answer plus
``DUPLICATE=1``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date

from kassa.sandbox.acquirer_b.codes import (
    CARD_TYPES,
    DECLINES,
    DISPUTE_EVENTS,
    EVENTS,
    FAILURE_RESULTS,
    FAILURES,
    FORM,
    SETTLEMENT_COLUMNS,
    reply,
)
from kassa.sandbox.acquirer_b.notifications import SilentPostFormat
from kassa.sandbox.acquiring import AcquirerService
from kassa.sandbox.cards import Outcome
from kassa.sandbox.clock import iso
from kassa.sandbox.fees import FeeSchedule
from kassa.sandbox.httpserver import Request, Response
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.money import AmountError, format_minor, parse_major
from kassa.sandbox.payments import (
    AUTHORISED,
    CANCELLED,
    Dispute,
    Modification,
    Payment,
)
from kassa.sandbox.settlement import SettlementReport
from kassa.sandbox.threeds import ThreeDSService
from kassa.sandbox.world import World

USER = "kassa"
VENDOR = "kassa"
PARTNER = "Beltrane"
PASSWORD = "beltrane-sandbox-pw-41"
WEBHOOK_SECRET = "bt_whsec_6d2f8a1c9e4b7035"


class BeltraneService(AcquirerService):
    """Beltrane Gateway (short name ``acquirer_b``)."""

    name = "acquirer_b"
    title = "Beltrane Gateway (form-encoded card acquirer)"
    currencies = frozenset({"USD", "CAD", "AUD", "NZD", "EUR", "GBP", "MXN", "JPY", "KWD", "BHD"})
    brands = frozenset({"visa", "mastercard", "discover", "jcb", "diners", "unionpay"})
    fees = FeeSchedule(
        percent_bps={"*": 240, "discover": 260, "jcb": 280, "diners": 300, "unionpay": 280},
        capture_fixed={
            "USD": "0.25", "CAD": "0.30", "AUD": "0.30", "NZD": "0.30", "EUR": "0.25",
            "GBP": "0.20", "MXN": "4.00", "JPY": "30", "KWD": "0.080", "BHD": "0.095",
        },
        refund_fixed={
            "USD": "0.25", "CAD": "0.30", "AUD": "0.30", "NZD": "0.30", "EUR": "0.25",
            "GBP": "0.20", "MXN": "4.00", "JPY": "30", "KWD": "0.080", "BHD": "0.095",
        },
        chargeback_fixed={
            "USD": "20.00", "CAD": "25.00", "AUD": "28.00", "NZD": "30.00", "EUR": "18.00",
            "GBP": "16.00", "MXN": "350.00", "JPY": "3000", "KWD": "6.000", "BHD": "7.500",
        },
    )  # fmt: skip
    default_settings = {**AcquirerService.default_settings, "settle_days": 1}

    def __init__(self, world: World, threeds: ThreeDSService) -> None:
        super().__init__(
            world,
            SilentPostFormat(WEBHOOK_SECRET),
            threeds,
            IdFactory(f"{world.seed}/beltrane", 12),
        )
        self.router.add("POST", "/", self._transaction)
        self.router.add("POST", "/disputes", self._disputes)
        self.router.add("POST", "/reports", self._reports)

    def credentials(self) -> dict[str, str]:
        """USER, VENDOR, PARTNER and PWD, sent as form fields with every request."""
        return {"user": USER, "vendor": VENDOR, "partner": PARTNER, "password": PASSWORD}

    def webhook_secret(self) -> str:
        """The secret behind ``X-Beltrane-Signature``."""
        return WEBHOOK_SECRET

    def api_error_response(self, status: int) -> Response:
        """A form body with RESULT=-1 for an injected 500 or 429."""
        if status == 429:
            return Response.form(
                {"RESULT": "-1", "RESPMSG": "Too many requests"}, 429, {"retry-after": "1"}
            )
        return Response.form({"RESULT": "-1", "RESPMSG": "Internal server error"}, status)

    # the transaction endpoint

    def _form(self, request: Request) -> dict[str, str] | Response:
        try:
            form = request.form()
        except ValueError:
            return reply(7, "Field format error: body is not form-encoded UTF-8")
        if (
            form.get("USER") != USER
            or form.get("VENDOR", USER) != VENDOR
            or form.get("PARTNER") != PARTNER
            or form.get("PWD") != PASSWORD
        ):
            return reply(1, "User authentication failed")
        return form

    def _transaction(self, request: Request, _: dict[str, str]) -> Response:
        form = self._form(request)
        if isinstance(form, Response):
            return form
        trx = form.get("TRXTYPE", "")
        if trx == "I":
            return self._inquiry(form)
        handler = {"S": self._sale, "A": self._sale, "D": self._capture, "C": self._credit,
                   "V": self._void}.get(trx)  # fmt: skip
        if handler is None:
            return reply(3, "Invalid transaction type")
        return self._once(request, lambda: handler(form))

    def _once(self, request: Request, produce: Callable[[], Response]) -> Response:
        """Answer once per ``X-VPS-REQUEST-ID``; a repeat gets that answer plus DUPLICATE=1."""
        key = request.headers.get("x-vps-request-id")
        if key is None:
            return produce()
        return self.idempotency.once(
            key,
            request,
            produce,
            lambda: reply(
                7,
                "Field format error: X-VPS-REQUEST-ID reused with different parameters",
                DUPLICATE="-1",
            ),
            lambda r: Response(r.status, r.body + b"&DUPLICATE=1", FORM),
        )

    def _sale(self, form: dict[str, str]) -> Response:
        trx = form["TRXTYPE"]
        if form.get("TENDER") != "C":
            return reply(2, "Invalid tender type: only TENDER=C (card) is supported")
        currency = form.get("CURRENCY", "USD")
        if currency not in self.currencies:
            return reply(7, f"Field format error: CURRENCY {currency} is not supported")
        amount = _amount(form.get("AMT"), currency)
        if amount is None:
            return reply(4, "Invalid amount")
        reference = form.get("CUSTREF", "")
        if not 0 < len(reference) <= 80:
            return reply(7, "Field format error: CUSTREF (1 to 80 characters) is required")
        expdate = form.get("EXPDATE", "")
        if len(expdate) != 4 or not expdate.isdigit() or not 1 <= int(expdate[:2]) <= 12:
            return reply(24, "Invalid expiration date")
        account = form.get("ACCT", "").replace(" ", "")
        cvc = form.get("CVV2") or None
        recurring = form.get("RECURRING") == "Y"
        check = self.check_card(
            account,
            int(expdate[:2]),
            2000 + int(expdate[2:]),
            cvc,
            amount=amount,
            currency=currency,
            recurring=recurring,
            threeds_result=form.get("THREEDSRESULT") or None,
        )
        payment = self.record(
            reference,
            amount,
            currency,
            check,
            recurring=recurring,
            extra={"trxtype": trx, "comment1": form.get("COMMENT1", "")},
        )
        common = {
            "PNREF": payment.id,
            "AMT": format_minor(amount, currency),
            "CURRENCY": currency,
            "CUSTREF": reference,
            "TRANSTIME": _time(payment.created_at),
        }
        card = payment.card
        if card is not None:
            common["ACCT"] = card.last4
            common["CARDTYPE"] = CARD_TYPES.get(card.brand, "")
        if payment.status != AUTHORISED:
            result, message, host = DECLINES[payment.outcome]
            if payment.outcome is Outcome.INCORRECT_CVC:
                common["CVV2MATCH"] = "N"
            return reply(result, message, HOSTCODE=host, **common)
        if trx == "S":
            mod = self.new_modification(payment, "capture", amount, reference, final=True)
            payment.extra["sale_capture"] = mod.id
            self.apply(payment, mod)
        return reply(
            0,
            "Approved",
            AUTHCODE=payment.auth_code,
            AVSADDR="Y",
            AVSZIP="Y",
            CVV2MATCH="Y" if cvc else "X",
            HOSTCODE="00",
            **common,
        )

    def _original(self, form: dict[str, str]) -> tuple[Payment, Modification | None] | None:
        origid = form.get("ORIGID", "")
        payment = self.payments.get(origid)
        if payment is not None:
            return payment, None
        return self.modifications.get(origid)

    def _follow_up(self, form: dict[str, str], kind: str) -> Response:
        found = self._original(form)
        if found is None:
            return reply(19, "Original transaction ID not found")
        payment, origin = found
        if kind == "cancel" and origin is not None:
            return reply(108, "Void error: only authorizations can be voided")
        if kind == "capture" and origin is not None:
            return reply(111, "Capture error: ORIGID must be an authorization")
        amount = 0
        if kind != "cancel":
            raw = form.get("AMT")
            remaining = payment.capturable if kind == "capture" else payment.refundable
            amount = remaining if raw is None else (_amount(raw, payment.currency) or -1)
            if amount < 0:
                return reply(4, "Invalid amount")
        final = kind == "capture" and form.get("CAPTURECOMPLETE", "Y") != "N"
        mod = self.new_modification(
            payment, kind, amount, form.get("COMMENT1", payment.reference), final=final
        )
        self.apply(payment, mod)
        fields = {
            "PNREF": mod.id,
            "ORIGID": form["ORIGID"],
            "CUSTREF": payment.reference,
            "CURRENCY": payment.currency,
            "TRANSTIME": _time(mod.created_at),
        }
        if kind != "cancel":
            fields["AMT"] = format_minor(amount, payment.currency)
        if mod.status != "succeeded":
            result, label = FAILURE_RESULTS[kind]
            return reply(result, f"{label}: {FAILURES[mod.reason or '']}", **fields)
        return reply(0, "Approved", **fields)

    def _capture(self, form: dict[str, str]) -> Response:
        return self._follow_up(form, "capture")

    def _credit(self, form: dict[str, str]) -> Response:
        return self._follow_up(form, "refund")

    def _void(self, form: dict[str, str]) -> Response:
        return self._follow_up(form, "cancel")

    def _inquiry(self, form: dict[str, str]) -> Response:
        if form.get("ORIGID"):
            found = self._original(form)
        else:
            candidates = self.by_reference.get(form.get("CUSTREF", ""), [])
            found = (candidates[-1], None) if candidates else None
        if found is None:
            return reply(19, "Original transaction ID not found")
        payment, mod = found
        if mod is not None:
            ok = mod.status == "succeeded"
            orig_result = "0" if ok else str(FAILURE_RESULTS[mod.kind][0])
            return reply(
                0,
                "Approved",
                PNREF=mod.id,
                ORIGPNREF=payment.id,
                ORIGRESULT=orig_result,
                TRANSSTATE="8" if ok else "1",
                TRXTYPE={"capture": "D", "refund": "C", "cancel": "V"}[mod.kind],
                AMT=format_minor(mod.amount, payment.currency),
                CURRENCY=payment.currency,
                CUSTREF=payment.reference,
            )
        orig_result = (
            "0" if payment.status in (AUTHORISED, CANCELLED) else str(DECLINES[payment.outcome][0])
        )
        return reply(
            0,
            "Approved",
            PNREF=payment.id,
            ORIGRESULT=orig_result,
            TRANSSTATE=self._transstate(payment),
            TRXTYPE=str(payment.extra.get("trxtype", "A")),
            AMT=format_minor(payment.amount, payment.currency),
            CAPTUREDAMT=format_minor(payment.captured, payment.currency),
            REFUNDEDAMT=format_minor(payment.refunded, payment.currency),
            CURRENCY=payment.currency,
            CUSTREF=payment.reference,
            TRANSTIME=_time(payment.created_at),
        )

    def _transstate(self, payment: Payment) -> str:
        """1 declined/error, 3 authorized, 6 captured (settlement pending), 8 settled, 11 voided."""
        if payment.status == CANCELLED:
            return "11"
        if payment.status != AUTHORISED:
            return "1"
        if payment.captured == 0:
            return "3"
        captures = [i for i in payment.ledger if i.kind == "capture"]
        settled = all(i.settles_on in self.settlement.reports for i in captures)
        return "8" if settled else "6"

    # disputes and reports

    def _disputes(self, request: Request, _: dict[str, str]) -> Response:
        form = self._form(request)
        if isinstance(form, Response):
            return form
        if form.get("ACTION") != "RESPOND":
            return self._dispute_action(form)
        return self._once(request, lambda: self._dispute_action(form))

    def _dispute_action(self, form: dict[str, str]) -> Response:
        found = self.disputes.get(form.get("DISPUTEID", ""))
        if found is None:
            return reply(19, "Dispute not found")
        payment, dispute = found
        action = form.get("ACTION", "INQUIRY")
        if action == "RESPOND":
            evidence = form.get("EVIDENCE", "")
            if not evidence:
                return reply(7, "Field format error: EVIDENCE is required")
            if not self.submit_evidence(payment, dispute, evidence):
                return reply(7, f"Field format error: dispute is {dispute.status}")
        elif action != "INQUIRY":
            return reply(3, "Invalid ACTION: use INQUIRY or RESPOND")
        return reply(0, "Approved", **_dispute_fields(payment, dispute))

    def _reports(self, request: Request, _: dict[str, str]) -> Response:
        form = self._form(request)
        if isinstance(form, Response):
            return form
        try:
            day = date.fromisoformat(form.get("REPORTDATE", ""))
        except ValueError:
            return reply(7, "Field format error: REPORTDATE must be YYYY-MM-DD")
        report = self.settlement.reports.get(day)
        if report is None:
            return reply(19, f"Settlement report for {day.isoformat()} not available")
        return Response(200, report.csv, "text/csv; charset=utf-8")

    def render_settlement(self, report: SettlementReport) -> bytes:
        """One row per item; decimal amounts in the currency's own precision."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(SETTLEMENT_COLUMNS)
        for item in report.rows:
            payment = self.payments.get(item.payment_id)
            kind = item.kind
            pnref, orig = item.item_id, item.payment_id
            if kind == "capture":
                sale = payment is not None and payment.extra.get("sale_capture") == item.item_id
                label = "Sale" if sale else "Delayed Capture"
                if sale:
                    pnref, orig = item.payment_id, ""
            else:
                label = {"refund": "Credit", "chargeback": "Chargeback",
                         "chargeback_reversal": "Chargeback Reversal"}[kind]  # fmt: skip
            writer.writerow(
                [
                    report.day.isoformat(), report.batch, pnref, orig,
                    item.merchant_reference, label, CARD_TYPES.get(item.brand, ""),
                    item.currency, format_minor(item.gross, item.currency),
                    format_minor(item.fee, item.currency), format_minor(item.net, item.currency),
                ]
            )  # fmt: skip
        return out.getvalue().encode()

    # notifications

    def on_modification(self, payment: Payment, mod: Modification) -> None:
        """Silent post for every decided capture (sales included), credit and void."""
        if not self.webhooks.enabled:
            return
        ok = mod.status == "succeeded"
        result = "0" if ok else str(FAILURE_RESULTS[mod.kind][0])
        # A sale's capture is the sale itself to the merchant: it carries the sale's PNREF.
        sale = payment.extra.get("sale_capture") == mod.id
        self._post(
            "SALE" if sale else EVENTS[mod.kind],
            mod.id,
            PNREF=payment.id if sale else mod.id,
            ORIGID="" if sale else payment.id,
            CUSTREF=payment.reference,
            AMT=format_minor(mod.amount, payment.currency),
            CURRENCY=payment.currency,
            RESULT=result,
            RESPMSG="Approved" if ok else FAILURES[mod.reason or ""],
        )

    def on_dispute(self, payment: Payment, dispute: Dispute) -> None:
        """Silent post DISPUTE_OPENED, DISPUTE_WON or DISPUTE_LOST."""
        if self.webhooks.enabled:
            event = DISPUTE_EVENTS.get(dispute.status, "DISPUTE_OPENED")
            self._post(event, dispute.id, **_dispute_fields(payment, dispute))

    def on_report(self, report: SettlementReport) -> None:
        """Silent post SETTLEMENT_REPORT naming the date to fetch through ``POST /reports``."""
        if self.webhooks.enabled:
            self._post(
                "SETTLEMENT_REPORT",
                f"batch-{report.batch}",
                REPORTDATE=report.day.isoformat(),
                BATCHID=str(report.batch),
                URL=f"{self.base_url}/reports",
            )

    def _post(self, event: str, subject: str, **fields: str) -> None:
        notification_id = f"{event}:{subject}"
        self.webhooks.emit(
            notification_id,
            {
                "EVENT": event,
                "NOTIFICATIONID": notification_id,
                "TRANSTIME": _time(self.clock.now()),
                **fields,
            },
        )


def _dispute_fields(payment: Payment, dispute: Dispute) -> dict[str, str]:
    return {
        "DISPUTEID": dispute.id,
        "ORIGID": payment.id,
        "CUSTREF": payment.reference,
        "STATUS": dispute.status.upper(),
        "REASON": dispute.reason.upper(),
        "AMT": format_minor(dispute.amount, dispute.currency),
        "CURRENCY": dispute.currency,
        "DUEDATE": iso(dispute.due_by),
    }


def _amount(raw: str | None, currency: str) -> int | None:
    if raw is None:
        return None
    try:
        amount = parse_major(raw, currency)
    except AmountError:
        return None
    return amount if amount > 0 else None


def _time(ts: float) -> str:
    return iso(ts).replace("T", " ").rstrip("Z")
