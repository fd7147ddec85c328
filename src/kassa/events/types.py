"""The event types Kassa emits or will emit, the list ``enabled_events`` is validated against.

Stripe's names where Stripe has the event; ``webhook_endpoint.disabled`` is Kassa's own (Stripe
sends an e-mail instead). docs/webhooks.md lists them with what triggers each."""

from __future__ import annotations

EVENT_TYPES: frozenset[str] = frozenset(
    {
        # Payment intents and their charges.
        "payment_intent.created",
        "payment_intent.processing",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
        "payment_intent.partially_funded",
        "charge.pending",
        "charge.succeeded",
        "charge.failed",
        "charge.captured",
        "charge.expired",
        "charge.updated",
        "charge.refunded",
        # Refunds.
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
        # Disputes.
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        # Customers and payment methods.
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "payment_method.attached",
        "payment_method.detached",
        "payment_method.updated",
        # Balance and payouts.
        "balance.available",
        "payout.created",
        "payout.updated",
        "payout.paid",
        "payout.failed",
        "payout.canceled",
        # Fraud reviews and the account.
        "review.opened",
        "review.closed",
        "radar.early_fraud_warning.created",
        "account.updated",
        # Kassa's own: an endpoint failing for days was disabled.
        "webhook_endpoint.disabled",
    }
)

WILDCARD = "*"


def is_known(event_type: str) -> bool:
    return event_type == WILDCARD or event_type in EVENT_TYPES
