"""The payment intent state machine: Stripe's statuses and the transitions between them, as
data. Every change of an intent's status goes through ``transition``, which refuses anything
not in the table; callers append the audit row in the same transaction."""

from __future__ import annotations

from enum import StrEnum

from kassa.core.errors import InvalidRequest


class IntentStatus(StrEnum):
    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"


S = IntentStatus

# Which statuses may follow which. ``processing`` is where an attempt waits for the PSP's
# answer (or for a status inquiry, when the answer was lost).
TRANSITIONS: dict[IntentStatus, frozenset[IntentStatus]] = {
    S.REQUIRES_PAYMENT_METHOD: frozenset({S.REQUIRES_CONFIRMATION, S.PROCESSING, S.CANCELED}),
    S.REQUIRES_CONFIRMATION: frozenset({S.REQUIRES_PAYMENT_METHOD, S.PROCESSING, S.CANCELED}),
    S.PROCESSING: frozenset(
        {S.SUCCEEDED, S.REQUIRES_CAPTURE, S.REQUIRES_ACTION, S.REQUIRES_PAYMENT_METHOD}
    ),
    S.REQUIRES_ACTION: frozenset({S.PROCESSING, S.REQUIRES_PAYMENT_METHOD, S.CANCELED}),
    S.REQUIRES_CAPTURE: frozenset({S.SUCCEEDED, S.CANCELED}),
    S.SUCCEEDED: frozenset(),
    S.CANCELED: frozenset(),
}

CANCELABLE = frozenset(
    {S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION, S.REQUIRES_CAPTURE}
)
CONFIRMABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION})


class UnexpectedState(InvalidRequest):
    """400 ``payment_intent_unexpected_state``, Stripe's answer to an action the intent's
    status does not allow."""

    def __init__(self, intent_id: str, status: str, action: str) -> None:
        super().__init__(
            f"You cannot {action} this PaymentIntent because it has a status of {status}.",
            code="payment_intent_unexpected_state",
            extra={"payment_intent": {"id": intent_id, "status": status}},
        )


def can(current: IntentStatus, new: IntentStatus) -> bool:
    return new in TRANSITIONS[current]


def transition(intent_id: str, current: str, new: IntentStatus, action: str) -> IntentStatus:
    """Check that ``current → new`` is allowed, else raise the Stripe error for ``action``."""
    status = IntentStatus(current)
    if not can(status, new):
        raise UnexpectedState(intent_id, status, action)
    return new
