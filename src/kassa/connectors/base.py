"""The interface every PSP adapter implements, in Kassa's own terms.

Like an httpx transport: the payment core speaks these request/response types only; each
adapter (``connectors/<psp>/``) maps them to its PSP's wire format and maps the PSP's failures
to the ``ConnectorError`` tree with ``raise … from``. Nothing outside ``connectors/<psp>/``
knows a PSP's format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Card:
    """Card data for one authorisation, decrypted from the vault for this call only."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str | None = field(default=None, repr=False)
    holder_name: str | None = None
    brand: str = ""


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    reference: str  # our attempt id: the PSP's idempotency reference and inquiry key
    amount: int  # minor units
    currency: str  # lower-case ISO 4217
    card: Card
    capture: bool  # True: authorise and capture at once (a "sale")
    description: str | None = None
    return_url: str | None = None  # where a 3-D Secure challenge sends the shopper back
    # Merchant-initiated (Stripe's ``off_session``): the shopper is absent, so the PSP flags
    # it as recurring/continuous and the issuer does not ask for a 3-D Secure challenge.
    off_session: bool = False


class AuthorizeOutcome(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"  # a sale: authorised and captured in one call
    DECLINED = "declined"
    REQUIRES_ACTION = "requires_action"  # 3-D Secure challenge: redirect the shopper


@dataclass(frozen=True, slots=True)
class AuthorizeResult:
    outcome: AuthorizeOutcome
    psp_reference: str | None
    decline_code: str | None = None  # Stripe vocabulary: generic_decline, insufficient_funds…
    failure_code: str | None = None  # Stripe error code: card_declined, expired_card…
    message: str | None = None
    redirect_url: str | None = None
    psp_code: str | None = None  # the PSP's own code, for the record


@dataclass(frozen=True, slots=True)
class ModificationRequest:
    """A capture, void or refund of an earlier authorisation."""

    reference: str  # our id for this operation (capture/refund id): the idempotency reference
    psp_reference: str  # the authorisation's reference at the PSP
    amount: int
    currency: str
    # Captures only (Stripe's ``final_capture``): True closes the authorisation, so the
    # uncaptured remainder is released; False keeps it open for further partial captures.
    final_capture: bool = True


class ModificationOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"  # accepted; the PSP confirms later by webhook
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ModificationResult:
    outcome: ModificationOutcome
    psp_reference: str | None
    message: str | None = None
    # Captures only: False when the PSP keeps an uncaptured remainder authorised after a final
    # capture (it has no "final" flag), so Kassa must void it to release the shopper's funds.
    remainder_released: bool = True


class PaymentState(StrEnum):
    NOT_FOUND = "not_found"  # the PSP never saw the reference: safe to fail the attempt
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    REQUIRES_ACTION = "requires_action"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class StatusResult:
    """What the PSP knows about an authorisation we asked for by our reference."""

    state: PaymentState
    psp_reference: str | None = None
    amount_captured: int = 0
    amount_refunded: int = 0
    decline_code: str | None = None
    failure_code: str | None = None
    amount: int | None = None  # the authorised amount, when the PSP says
    currency: str | None = None


class EventKind(StrEnum):
    """What a PSP notification reports, in Kassa's words."""

    AUTHORISATION = "authorisation"
    CAPTURE = "capture"
    REFUND = "refund"
    CANCEL = "cancel"
    CHARGEBACK_OPENED = "chargeback_opened"
    CHARGEBACK_WON = "chargeback_won"
    CHARGEBACK_LOST = "chargeback_lost"
    SETTLEMENT = "settlement"  # a settlement report is ready to download
    # Asynchronous payment methods (bank debits, wallets, BNPL): see ``MethodConnector``.
    DEBIT_SETTLED = "debit_settled"  # the bank rail collected the debit
    DEBIT_RETURNED = "debit_returned"  # returned, before or after settling (``reason``)
    APPROVED = "approved"  # the shopper approved on the provider's page
    DECLINED = "declined"  # the provider declined (credit check, funding instrument)


@dataclass(frozen=True, slots=True)
class PspEvent:
    """One verified PSP notification, PSP-neutral.

    The inbox stores it under ``(connector, event_id)`` with ``ON CONFLICT DO NOTHING``: PSPs
    deliver at least once, so the same ``event_id`` may arrive again."""

    event_id: str  # the PSP's deduplication key
    kind: EventKind
    success: bool  # False: the operation was refused (e.g. a capture beyond what is left)
    psp_reference: str  # the PSP's id of what happened: capture, refund, dispute, report…
    payment_psp_reference: str | None = None  # the authorisation it belongs to
    reference: str | None = None  # our reference of the payment (the attempt id)
    operation_reference: str | None = None  # our capture/refund reference, when echoed
    amount: int | None = None  # minor units
    currency: str | None = None  # lower-case ISO 4217
    # Chargebacks: Stripe's dispute reason (``fraudulent``, ``general``…). Otherwise the PSP's
    # own words on why an operation failed.
    reason: str | None = None
    occurred_at: datetime | None = None
    dispute_due_by: datetime | None = None
    settlement_date: date | None = None


@dataclass(frozen=True, slots=True)
class WebhookAck:
    """The exact answer a PSP needs to stop resending a notification."""

    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class WebhookBatch:
    """The verified events of one notification request, and how to acknowledge it. Answer
    ``ack`` only once the events are stored: an unacknowledged delivery is sent again."""

    events: tuple[PspEvent, ...]
    ack: WebhookAck


class ConnectorError(Exception):
    """Base of every failure talking to a PSP."""

    retryable: bool = False


class OutcomeUnknown(ConnectorError):
    """Timeout, 5xx, broken connection after sending: the PSP may have applied the operation.
    Never guessed; resolved by a status inquiry."""

    retryable = True


class NotSent(ConnectorError):
    """The request certainly did not reach the PSP (connection refused, open breaker)."""

    retryable = True


class RateLimited(ConnectorError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(ConnectorError):
    """The PSP refused the request itself (bad credentials, invalid data): not retryable."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # the PSP's error code, for the record


class InvalidNotification(ConnectorError):
    """A notification that failed verification (bad or missing signature, stale timestamp,
    malformed body). Process nothing from it and do not acknowledge it."""


class Connector(Protocol):
    """A PSP adapter."""

    name: str
    # False when the PSP captures an authorisation whole and takes no amount: a partial
    # capture would book less than it captured, so Kassa refuses one.
    partial_capture: bool

    async def authorize(self, request: AuthorizeRequest) -> AuthorizeResult: ...

    async def complete_authentication(
        self,
        request: AuthorizeRequest,
        psp_reference: str | None,
        return_params: Mapping[str, str],
    ) -> AuthorizeResult:
        """Finish a ``REQUIRES_ACTION`` authorisation once the shopper is back from the
        redirect: ``request`` is the original one (with the card again: some PSPs authorise
        anew), ``psp_reference`` the one the redirect came with, ``return_params`` the query
        parameters the shopper returned with."""
        ...

    async def capture(self, request: ModificationRequest) -> ModificationResult: ...

    async def void(self, request: ModificationRequest) -> ModificationResult: ...

    async def refund(self, request: ModificationRequest) -> ModificationResult: ...

    async def status(self, reference: str) -> StatusResult: ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookBatch:
        """Verify and parse one notification request (raises ``InvalidNotification``)."""
        ...

    async def close(self) -> None: ...


# --- asynchronous payment methods -----------------------------------------------------------
# Bank debits, wallets and buy-now-pay-later do not authorise a card: a debit runs on a bank
# rail for days, a wallet or BNPL payment waits for the shopper to approve on the provider's
# page. Their connectors implement ``MethodConnector`` (and ``Connector`` for refunds, status
# and notifications; ``authorize`` refuses cards).


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A bank account to debit, opened from the vault for this call only."""

    rail: str  # ach | sepa
    account_number: str | None = field(default=None, repr=False)  # ACH
    routing_number: str | None = None  # ACH
    iban: str | None = field(default=None, repr=False)  # SEPA
    holder_name: str | None = None


@dataclass(frozen=True, slots=True)
class MethodRequest:
    """Start one payment with an asynchronous payment method."""

    reference: str  # our attempt (charge) id: the idempotency key and the inquiry key
    amount: int  # minor units
    currency: str  # lower-case ISO 4217
    payment_method_type: str  # Stripe's: us_bank_account, sepa_debit, paypal, klarna
    capture: bool = True
    return_url: str | None = None  # redirect methods: where the provider sends the shopper
    cancel_url: str | None = None
    email: str | None = None  # BNPL: the customer the credit check is for
    bank_account: BankAccount | None = None
    description: str | None = None


class MethodOutcome(StrEnum):
    PROCESSING = "processing"  # a debit is on the rail: settled or returned later
    REQUIRES_ACTION = "requires_action"  # send the shopper to ``redirect_url``
    AUTHORIZED = "authorized"  # approved, not captured
    CAPTURED = "captured"  # the money is the merchant's (settlement may still be deferred)
    DECLINED = "declined"  # refused (credit check, funding instrument), or the shopper left
    RETURNED = "returned"  # a debit came back (``returned_after_settlement`` if late)
    NOT_FOUND = "not_found"  # the provider holds nothing under the reference


@dataclass(frozen=True, slots=True)
class MethodResult:
    outcome: MethodOutcome
    psp_reference: str | None  # the provider's id of the payment (debit, order, checkout)
    redirect_url: str | None = None
    failure_code: str | None = None  # Stripe vocabulary: insufficient_funds, account_closed…
    message: str | None = None
    psp_code: str | None = None  # the provider's own code (R01, AM04, INSTRUMENT_DECLINED…)
    # Where refunds go when it is not ``psp_reference`` (a wallet refunds the capture).
    capture_reference: str | None = None
    # How long after the capture the provider pays the money out (BNPL's deferred
    # settlement): a duration, so the provider's clock never has to agree with ours.
    settles_after: timedelta | None = None
    returned_after_settlement: bool = False
    details: Mapping[str, str | None] = field(default_factory=dict)  # payer email, id…


@runtime_checkable
class MethodConnector(Protocol):
    """A provider of asynchronous payment methods (bank, wallet, BNPL)."""

    name: str
    payment_method_types: frozenset[str]
    currencies: frozenset[str]  # lower-case; what the provider accepts

    async def start(self, request: MethodRequest) -> MethodResult:
        """Create the payment: a debit (``PROCESSING``) or a checkout the shopper must approve
        (``REQUIRES_ACTION``). Idempotent under ``request.reference``."""
        ...

    async def complete(
        self, request: MethodRequest, psp_reference: str, return_params: Mapping[str, str]
    ) -> MethodResult:
        """After the shopper came back (or a notification said they approved): verify with the
        provider what they did and, when approved and ``request.capture``, capture."""
        ...

    async def inquire(self, reference: str) -> MethodResult:
        """What the provider holds under our reference (the fallback to notifications)."""
        ...
