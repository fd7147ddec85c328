"""Errors of the vault, in Stripe's shapes."""

from __future__ import annotations

from kassa.core.errors import InvalidRequest, KassaError


class CardError(KassaError):
    """402 ``card_error``: the card details themselves are wrong (number, expiry, CVC)."""

    status = 402
    type = "card_error"


class PaymentMethodMissing(KassaError):
    """No such payment method for this merchant and mode (or a test token in live mode).

    404 when the id is the URL's, 400 when a parameter names it, as Stripe answers."""

    def __init__(self, pm_id: str, param: str = "id") -> None:
        super().__init__(
            f"No such PaymentMethod: '{pm_id}'",
            code="resource_missing",
            param=param,
            status=404 if param == "id" else 400,
        )


def already_attached() -> InvalidRequest:
    return InvalidRequest(
        "The payment method you provided has already been attached to a customer.",
        code="payment_method_unexpected_state",
    )


def not_reusable(pm_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"This PaymentMethod ({pm_id}) was previously used without being attached to a "
        "Customer or was detached from a Customer, and may not be used again.",
        code="payment_method_unexpected_state",
    )


def not_attached() -> InvalidRequest:
    return InvalidRequest(
        "The payment method you provided is not attached to a customer so detachment is "
        "impossible.",
        code="payment_method_unexpected_state",
    )


def must_be_attached_to_update() -> InvalidRequest:
    return InvalidRequest(
        "You must save this PaymentMethod to a customer before you can update it.",
        code="payment_method_unexpected_state",
    )
