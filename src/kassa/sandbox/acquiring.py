"""What both card acquirers share: card checks, captures, refunds, voids, disputes and
settlement. Each acquirer subclass adds its own wire format, codes and notifications.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from kassa.sandbox.admin import admin_body, bad_request
from kassa.sandbox.cards import (
    Outcome,
    ThreeDS,
    bin_info,
    cvc_length,
    luhn_valid,
    pan_fingerprint,
    scripted_card,
)
from kassa.sandbox.clock import DAY, utc_date
from kassa.sandbox.fees import FeeSchedule
from kassa.sandbox.httpserver import Request, Response
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.payments import (
    AUTHORISATION_CLOSED,
    AUTHORISED,
    CANCELLED,
    DISPUTED,
    ERROR,
    EXCEEDS_AUTHORISED,
    EXCEEDS_CAPTURED,
    FULLY_CAPTURED,
    NOT_AUTHORISED,
    PENDING_AUTHENTICATION,
    REFUSED,
    WINNING_EVIDENCE,
    CardCheck,
    CardSummary,
    Dispute,
    Modification,
    Payment,
)
from kassa.sandbox.service import Service
from kassa.sandbox.settlement import (
    DISCREPANCY_KINDS,
    LedgerItem,
    SettlementBook,
    SettlementReport,
)
from kassa.sandbox.threeds import ThreeDSService
from kassa.sandbox.webhooks import WebhookFormat
from kassa.sandbox.world import World


class AcquirerService(Service):
    """A card acquirer's business rules; subclasses speak a wire format over them."""

    currencies: ClassVar[frozenset[str]]
    brands: ClassVar[frozenset[str]]
    fees: ClassVar[FeeSchedule]
    default_settings: ClassVar[Mapping[str, float]] = {
        "settle_days": 2,
        "dispute_open_delay_s": 0,
        "dispute_response_s": 7 * DAY,
        "dispute_decision_delay_s": 0,
    }

    def __init__(
        self, world: World, webhook_format: WebhookFormat, threeds: ThreeDSService, ids: IdFactory
    ) -> None:
        super().__init__(world, webhook_format)
        self.threeds = threeds
        self.ids = ids
        self._auth_codes = IdFactory(f"{world.seed}/{self.name}/auth", 6)
        self.payments: dict[str, Payment] = {}
        self.by_reference: dict[str, list[Payment]] = {}
        self.modifications: dict[str, tuple[Payment, Modification]] = {}
        self.disputes: dict[str, tuple[Payment, Dispute]] = {}
        self.settlement = SettlementBook(
            self.clock,
            self.scheduler,
            random.Random(f"{world.seed}/{self.name}/settlement"),
            self.render_settlement,
            self.on_report,
            self.ids.next,
        )
        self.router.add("GET", "/admin/settlement/reports", self._admin_reports)
        self.router.add("POST", "/admin/settlement/discrepancies", self._admin_discrepancies)

    def start(self) -> None:
        """Schedule the daily settlement close (and the base class's upkeep)."""
        super().start()
        self.settlement.start()

    def describe(self) -> dict[str, Any]:
        """The manifest entry plus what the acquirer accepts and charges."""
        return {
            **super().describe(),
            "currencies": sorted(self.currencies),
            "brands": sorted(self.brands),
            "fees": self.fees.describe(),
            "settle_days": int(self.settings["settle_days"]),
        }

    # cards and authorisations

    def check_card(
        self,
        number: str,
        exp_month: int,
        exp_year: int,
        cvc: str | None,
        *,
        amount: int,
        currency: str,
        recurring: bool,
        threeds_result: str | None,
    ) -> CardCheck:
        """Decide what the card network and issuer say to an authorisation request."""
        scripted = scripted_card(number)
        if not luhn_valid(number):
            return CardCheck(Outcome.INVALID_NUMBER, Outcome.INVALID_NUMBER, None, scripted)
        info = bin_info(number)
        cvc_ok = cvc is not None and cvc.isdigit() and len(cvc) == cvc_length(info.brand)
        card = CardSummary(
            brand=info.brand,
            bin=number[:6],
            last4=number[-4:],
            country=info.country,
            funding=info.funding,
            exp_month=exp_month,
            exp_year=exp_year,
            fingerprint=pan_fingerprint(number),
            cvc_check="unchecked" if cvc is None else "pass" if cvc_ok else "fail",
        )
        if info.brand not in self.brands:
            return CardCheck(Outcome.UNSUPPORTED_BRAND, Outcome.UNSUPPORTED_BRAND, card, scripted)
        today = self.clock.today()
        if (exp_year, exp_month) < (today.year, today.month):
            issuer = Outcome.EXPIRED_CARD
        elif cvc is not None and not cvc_ok:
            issuer = Outcome.INCORRECT_CVC
        else:
            issuer = scripted.outcome
        if threeds_result is not None:
            ok = self._authentication_ok(threeds_result, card, amount, currency, None)
            outcome = issuer if ok else Outcome.AUTHENTICATION_FAILED
        elif scripted.three_ds is ThreeDS.ALWAYS or (
            scripted.three_ds is ThreeDS.UNLESS_RECURRING and not recurring
        ):
            outcome = Outcome.AUTHENTICATION_REQUIRED
        else:
            outcome = issuer
        if outcome is Outcome.APPROVED and self.faults.issuer_declines():
            # A degraded acquirer (injected): the issuer refuses as it would any card.
            outcome = issuer = Outcome.GENERIC_DECLINE
        return CardCheck(outcome, issuer, card, scripted)

    def _authentication_ok(
        self,
        token: str,
        card: CardSummary,
        amount: int,
        currency: str,
        authentication_id: str | None,
    ) -> bool:
        payload = self.threeds.verify(token)
        return bool(
            payload
            and payload.get("status") == "Y"
            and payload.get("pan") == card.fingerprint
            and payload.get("amount") == amount
            and payload.get("currency") == currency
            and (authentication_id is None or payload.get("authentication_id") == authentication_id)
        )

    def record(
        self,
        reference: str,
        amount: int,
        currency: str,
        check: CardCheck,
        *,
        recurring: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Payment:
        """Store a new payment in the state its card check put it in."""
        outcome = check.outcome
        if outcome is Outcome.APPROVED:
            status = AUTHORISED
        elif outcome is Outcome.PROCESSING_ERROR:
            status = ERROR
        elif outcome is Outcome.AUTHENTICATION_REQUIRED:
            status = PENDING_AUTHENTICATION
        else:
            status = REFUSED
        payment = Payment(
            id=self.ids.next(),
            reference=reference,
            amount=amount,
            currency=currency,
            card=check.card,
            outcome=outcome,
            status=status,
            created_at=self.clock.now(),
            scripted=check.scripted,
            recurring=recurring,
            auth_code=self._auth_codes.next() if status == AUTHORISED else "",
            pending_outcome=check.issuer_outcome if status == PENDING_AUTHENTICATION else None,
            extra=extra or {},
        )
        self.payments[payment.id] = payment
        self.by_reference.setdefault(reference, []).append(payment)
        return payment

    def complete_authentication(self, payment: Payment, token: str) -> None:
        """Finish a payment that waited for 3-D Secure, given the shopper's result token."""
        if payment.status != PENDING_AUTHENTICATION or payment.card is None:
            return
        ok = self._authentication_ok(
            token, payment.card, payment.amount, payment.currency, payment.authentication_id
        )
        outcome = payment.pending_outcome if ok and payment.pending_outcome else None
        payment.outcome = outcome or Outcome.AUTHENTICATION_FAILED
        payment.pending_outcome = None
        if payment.outcome is Outcome.APPROVED:
            payment.status = AUTHORISED
            payment.auth_code = self._auth_codes.next()
        elif payment.outcome is Outcome.PROCESSING_ERROR:
            payment.status = ERROR
        else:
            payment.status = REFUSED

    # modifications

    def new_modification(
        self, payment: Payment, kind: str, amount: int, reference: str, *, final: bool = False
    ) -> Modification:
        """Register a capture/refund/cancel request; :meth:`apply` decides it."""
        mod = Modification(
            id=self.ids.next(),
            payment_id=payment.id,
            kind=kind,
            amount=amount,
            reference=reference,
            created_at=self.clock.now(),
            final=final,
        )
        payment.modifications.append(mod)
        self.modifications[mod.id] = (payment, mod)
        return mod

    def apply(self, payment: Payment, mod: Modification) -> None:
        """Decide a modification against the payment's state now, book money, notify."""
        reason = self._refusal(payment, mod)
        mod.processed_at = self.clock.now()
        if reason is not None:
            mod.status, mod.reason = "failed", reason
            self.on_modification(payment, mod)
            return
        mod.status = "succeeded"
        if mod.kind == "capture":
            payment.captured += mod.amount
            if mod.final or payment.captured == payment.amount:
                payment.closed = True
            self._book_capture(payment, mod)
        elif mod.kind == "refund":
            payment.refunded += mod.amount
            self._book(
                payment, "refund", mod.id, -mod.amount, self.fees.refund_fee(payment.currency)
            )
        else:
            payment.closed = True
            if payment.captured == 0:
                payment.status = CANCELLED
        self.on_modification(payment, mod)

    def _refusal(self, payment: Payment, mod: Modification) -> str | None:
        if mod.kind == "capture":
            if payment.status != AUTHORISED:
                return NOT_AUTHORISED
            if payment.closed:
                return AUTHORISATION_CLOSED
            if not 0 < mod.amount <= payment.capturable:
                return EXCEEDS_AUTHORISED
        elif mod.kind == "refund":
            if any(d.status != "won" for d in payment.disputes):
                return DISPUTED
            if not 0 < mod.amount <= payment.refundable:
                return EXCEEDS_CAPTURED
        else:
            if payment.status != AUTHORISED:
                return NOT_AUTHORISED
            if payment.closed:
                return (
                    FULLY_CAPTURED if payment.captured == payment.amount else AUTHORISATION_CLOSED
                )
        return None

    def _book_capture(self, payment: Payment, mod: Modification) -> None:
        assert payment.card is not None
        fee = self.fees.capture_fee(mod.amount, payment.currency, payment.card.brand)
        days = 0 if payment.scripted.bypass_pending else int(self.settings["settle_days"])
        self._book(payment, "capture", mod.id, mod.amount, fee, days)
        if payment.scripted.disputed and not payment.dispute_scheduled:
            payment.dispute_scheduled = True
            self.scheduler.after(
                self.settings["dispute_open_delay_s"],
                lambda: self.open_dispute(payment),
                "open dispute",
            )

    def _book(
        self,
        payment: Payment,
        kind: str,
        item_id: str,
        gross: int,
        fee: int,
        days: int | None = None,
    ) -> None:
        now = self.clock.now()
        delay = int(self.settings["settle_days"]) if days is None else days
        item = LedgerItem(
            kind=kind,
            payment_id=payment.id,
            item_id=item_id,
            merchant_reference=payment.reference,
            currency=payment.currency,
            gross=gross,
            fee=fee,
            booked_at=now,
            settles_on=utc_date(now) + timedelta(days=delay),
            brand=payment.card.brand if payment.card else "",
        )
        payment.ledger.append(item)
        self.settlement.book(item)

    # disputes

    def open_dispute(self, payment: Payment) -> Dispute:
        """Open a fraud chargeback on a captured payment; its funds are withdrawn at once."""
        now = self.clock.now()
        dispute = Dispute(
            id=self.ids.next(),
            payment_id=payment.id,
            amount=payment.captured,
            currency=payment.currency,
            reason="fraudulent",
            opened_at=now,
            due_by=now + self.settings["dispute_response_s"],
        )
        payment.disputes.append(dispute)
        self.disputes[dispute.id] = (payment, dispute)
        self._book(
            payment,
            "chargeback",
            dispute.id,
            -dispute.amount,
            self.fees.chargeback_fee(payment.currency),
        )
        self.scheduler.at(dispute.due_by, lambda: self._deadline(payment, dispute), "dispute due")
        self.on_dispute(payment, dispute)
        return dispute

    def submit_evidence(self, payment: Payment, dispute: Dispute, evidence: str) -> bool:
        """Take the merchant's defence; False if the dispute no longer accepts evidence.

        Evidence containing ``winning_evidence`` wins, anything else loses, after
        ``dispute_decision_delay_s``.
        """
        if dispute.status != "needs_response":
            return False
        dispute.status = "under_review"
        dispute.evidence = evidence
        won = WINNING_EVIDENCE in evidence
        self.scheduler.after(
            self.settings["dispute_decision_delay_s"],
            lambda: self._decide(payment, dispute, won),
            "dispute decision",
        )
        return True

    def _decide(self, payment: Payment, dispute: Dispute, won: bool) -> None:
        dispute.status = "won" if won else "lost"
        dispute.decided_at = self.clock.now()
        if won:
            self._book(payment, "chargeback_reversal", f"{dispute.id}-R", dispute.amount, 0)
        self.on_dispute(payment, dispute)

    def _deadline(self, payment: Payment, dispute: Dispute) -> None:
        if dispute.status == "needs_response":
            self._decide(payment, dispute, False)

    # hooks for the wire format

    def on_modification(self, payment: Payment, mod: Modification) -> None:
        """Notify the merchant that a modification was decided."""

    def on_dispute(self, payment: Payment, dispute: Dispute) -> None:
        """Notify the merchant that a dispute opened or was decided."""

    def on_report(self, report: SettlementReport) -> None:
        """Notify the merchant that a settlement report is ready."""

    def render_settlement(self, report: SettlementReport) -> bytes:
        """Render a settlement report in this acquirer's CSV columns."""
        raise NotImplementedError

    # admin

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Payments newest first; ``reference`` filters, ``limit`` caps (default 500)."""
        ref = query.get("reference")
        limit = int(query.get("limit", "500")) if query.get("limit", "").isdigit() else 500
        source = self.by_reference.get(ref, []) if ref is not None else self.payments.values()
        return [p.to_json() for p in list(reversed(list(source)))[:limit]]

    def _admin_reports(self, _: Request, __: dict[str, str]) -> Response:
        return Response.json(
            {
                "data": [r.summary() for r in self.settlement.reports.values()],
                "pending_discrepancies": self.settlement.pending_discrepancies,
            }
        )

    def _admin_discrepancies(self, request: Request, _: dict[str, str]) -> Response:
        body = admin_body(request)
        for kind, count in body.items():
            if kind not in DISCREPANCY_KINDS:
                raise bad_request(f"unknown discrepancy {kind!r}; known: {DISCREPANCY_KINDS}")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise bad_request(f"{kind} must be a non-negative integer")
        for kind, count in body.items():
            self.settlement.pending_discrepancies[kind] += count
        return Response.json({"pending_discrepancies": self.settlement.pending_discrepancies})
