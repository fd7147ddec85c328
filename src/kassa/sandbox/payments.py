"""The records an acquirer keeps: payments, their modifications and disputes.

The acquirer keeps a card's brand, BIN, last four digits and a fingerprint, never its number
or CVC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa.sandbox.cards import Outcome, ScriptedCard
from kassa.sandbox.clock import iso
from kassa.sandbox.settlement import LedgerItem

# Payment statuses.
AUTHORISED = "authorised"
REFUSED = "refused"
ERROR = "error"
PENDING_AUTHENTICATION = "pending_authentication"
CANCELLED = "cancelled"

# Why a modification failed (each acquirer words these its own way).
NOT_AUTHORISED = "not_authorised"
AUTHORISATION_CLOSED = "authorisation_closed"
EXCEEDS_AUTHORISED = "exceeds_authorised"
EXCEEDS_CAPTURED = "exceeds_captured"
DISPUTED = "disputed"
FULLY_CAPTURED = "fully_captured"

WINNING_EVIDENCE = "winning_evidence"


@dataclass(slots=True, frozen=True)
class CardSummary:
    """What the acquirer keeps of a card: never the full number or the CVC."""

    brand: str
    bin: str
    last4: str
    country: str | None
    funding: str
    exp_month: int
    exp_year: int
    fingerprint: str
    # What the issuer said of the CVC: pass, fail, or unchecked when none came (card on file).
    cvc_check: str = "unchecked"

    def to_json(self) -> dict[str, Any]:
        """Return the card summary as JSON."""
        return {
            "brand": self.brand,
            "bin": self.bin,
            "last4": self.last4,
            "country": self.country,
            "funding": self.funding,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "fingerprint": self.fingerprint,
            "cvc_check": self.cvc_check,
        }


@dataclass(slots=True, frozen=True)
class CardCheck:
    """The verdict on a card: ``outcome`` now, ``issuer_outcome`` once authenticated."""

    outcome: Outcome
    issuer_outcome: Outcome
    card: CardSummary | None
    scripted: ScriptedCard


@dataclass(slots=True, eq=False)
class Modification:
    """A capture, refund or cancel of a payment."""

    id: str
    payment_id: str
    kind: str  # capture | refund | cancel
    amount: int
    reference: str
    created_at: float
    final: bool = False  # a capture that closes the rest of the authorisation
    status: str = "received"  # received | succeeded | failed
    reason: str | None = None
    processed_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the modification as JSON."""
        return {
            "id": self.id,
            "kind": self.kind,
            "amount": self.amount,
            "reference": self.reference,
            "status": self.status,
            "reason": self.reason,
            "created_at": iso(self.created_at),
            "processed_at": iso(self.processed_at) if self.processed_at else None,
        }


@dataclass(slots=True, eq=False)
class Dispute:
    """A chargeback: opened with funds withdrawn, then won or lost on the evidence."""

    id: str
    payment_id: str
    amount: int
    currency: str
    reason: str
    opened_at: float
    due_by: float
    status: str = "needs_response"  # needs_response | under_review | won | lost
    evidence: str | None = None
    decided_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the dispute as JSON."""
        return {
            "id": self.id,
            "payment_id": self.payment_id,
            "amount": self.amount,
            "currency": self.currency,
            "reason": self.reason,
            "status": self.status,
            "evidence": self.evidence,
            "opened_at": iso(self.opened_at),
            "due_by": iso(self.due_by),
            "decided_at": iso(self.decided_at) if self.decided_at else None,
        }


@dataclass(slots=True, eq=False)
class Payment:
    """One authorisation attempt and everything that happened to it since."""

    id: str
    reference: str
    amount: int
    currency: str
    card: CardSummary | None
    outcome: Outcome
    status: str
    created_at: float
    scripted: ScriptedCard
    recurring: bool = False
    auth_code: str = ""
    captured: int = 0
    refunded: int = 0
    closed: bool = False
    pending_outcome: Outcome | None = None
    authentication_id: str | None = None
    dispute_scheduled: bool = False
    modifications: list[Modification] = field(default_factory=list)
    disputes: list[Dispute] = field(default_factory=list)
    ledger: list[LedgerItem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def capturable(self) -> int:
        """Authorised amount still available for capture."""
        if self.status != AUTHORISED or self.closed:
            return 0
        return self.amount - self.captured

    @property
    def refundable(self) -> int:
        """Captured amount not yet refunded."""
        return self.captured - self.refunded

    def to_json(self) -> dict[str, Any]:
        """Return the payment as the acquirer's own records show it."""
        return {
            "id": self.id,
            "reference": self.reference,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "outcome": self.outcome.value,
            "captured": self.captured,
            "refunded": self.refunded,
            "capturable": self.capturable,
            "closed": self.closed,
            "auth_code": self.auth_code or None,
            "authentication_id": self.authentication_id,
            "card": self.card.to_json() if self.card else None,
            "created_at": iso(self.created_at),
            "modifications": [m.to_json() for m in self.modifications],
            "disputes": [d.to_json() for d in self.disputes],
            "ledger": [i.to_json() for i in self.ledger],
            **self.extra,
        }
