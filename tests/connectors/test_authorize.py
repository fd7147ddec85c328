"""Authorisations against both sandbox acquirers: outcomes, Stripe's decline vocabulary for
every test card, 3-D Secure, and exact amounts in 0- and 3-decimal currencies."""

from __future__ import annotations

import pytest

from kassa.connectors.base import AuthorizeOutcome, Connector, PaymentState

from .support import (
    AMEX,
    MASTERCARD,
    THREE_DS_ALWAYS,
    THREE_DS_UNLESS_OFF_SESSION,
    VISA,
    Admin,
    auth,
    shopper_completes_challenge,
)

# Stripe's answer for each test card (reference/stripe-api.md): (failure_code, decline_code).
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline"),
    "4000000000009995": ("card_declined", "insufficient_funds"),
    "4000000000009987": ("card_declined", "lost_card"),
    "4000000000009979": ("card_declined", "stolen_card"),
    "4000000000000069": ("expired_card", None),
    "4000000000000127": ("incorrect_cvc", None),
    "4000000000000119": ("processing_error", None),
    "4242424242424241": ("incorrect_number", None),  # fails the Luhn check
}


async def test_manual_authorization(connector: Connector, kind: str, admin: Admin) -> None:
    request = auth(VISA, amount=2500)
    result = await connector.authorize(request)
    assert result.outcome is AuthorizeOutcome.AUTHORIZED
    assert result.psp_reference
    assert result.failure_code is None
    record = admin.record(kind, request.reference)
    assert (record["id"], record["status"]) == (result.psp_reference, "authorised")
    assert (record["amount"], record["currency"], record["captured"]) == (2500, "EUR", 0)


@pytest.mark.parametrize("number", [VISA, MASTERCARD])
async def test_sale_is_captured_at_once(
    connector: Connector, kind: str, admin: Admin, number: str
) -> None:
    request = auth(number, amount=1999, capture=True)
    result = await connector.authorize(request)
    assert result.outcome is AuthorizeOutcome.CAPTURED
    record = admin.record(kind, request.reference)
    assert (record["captured"], record["card"]["brand"]) == (
        1999,
        "visa" if number == VISA else "mastercard",
    )


@pytest.mark.parametrize(("number", "codes"), DECLINES.items())
async def test_test_cards_decline_in_stripes_words(
    connector: Connector, number: str, codes: tuple[str, str | None]
) -> None:
    result = await connector.authorize(auth(number))
    assert result.outcome is AuthorizeOutcome.DECLINED
    assert (result.failure_code, result.decline_code) == codes
    assert result.psp_code  # the PSP's own code is kept for the record


async def test_past_expiry_is_expired_card(connector: Connector) -> None:
    result = await connector.authorize(auth(VISA, exp=(1, 2021)))
    assert (result.outcome, result.failure_code, result.decline_code) == (
        AuthorizeOutcome.DECLINED,
        "expired_card",
        None,
    )


async def test_amex(connector: Connector, kind: str) -> None:
    result = await connector.authorize(auth(AMEX))
    if kind == "acquirer_a":
        assert result.outcome is AuthorizeOutcome.AUTHORIZED
    else:  # Beltrane takes no Amex
        assert (result.outcome, result.failure_code, result.decline_code) == (
            AuthorizeOutcome.DECLINED,
            "card_declined",
            "card_not_supported",
        )


async def test_three_ds_card_requires_action_then_authorises(
    connector: Connector, kind: str, admin: Admin
) -> None:
    request = auth(THREE_DS_ALWAYS, amount=4200, capture=True)
    result = await connector.authorize(request)
    assert result.outcome is AuthorizeOutcome.REQUIRES_ACTION
    assert result.redirect_url is not None
    assert result.redirect_url.startswith(admin.services["threeds"]["base_url"] + "/challenge/")
    assert (await connector.status(request.reference)).state is PaymentState.REQUIRES_ACTION

    returned = shopper_completes_challenge(result.redirect_url)
    done = await connector.complete_authentication(request, result.psp_reference, returned)
    assert done.outcome is AuthorizeOutcome.CAPTURED
    assert done.psp_reference
    status = await connector.status(request.reference)
    assert (status.state, status.amount_captured) == (PaymentState.CAPTURED, 4200)
    # The approved authorisation is the one captured, whatever intermediate record exists.
    captured = [r for r in admin.records(kind, request.reference) if r["captured"]]
    assert [(r["id"], r["captured"]) for r in captured] == [(done.psp_reference, 4200)]


async def test_failed_challenge_declines(connector: Connector) -> None:
    request = auth(THREE_DS_ALWAYS)
    result = await connector.authorize(request)
    assert result.redirect_url is not None
    returned = shopper_completes_challenge(result.redirect_url, action="fail")
    done = await connector.complete_authentication(request, result.psp_reference, returned)
    assert (done.outcome, done.failure_code) == (
        AuthorizeOutcome.DECLINED,
        "payment_intent_authentication_failure",
    )


async def test_off_session_payment_skips_the_challenge(connector: Connector) -> None:
    on_session = await connector.authorize(auth(THREE_DS_UNLESS_OFF_SESSION))
    assert on_session.outcome is AuthorizeOutcome.REQUIRES_ACTION
    assert on_session.redirect_url
    off_session = await connector.authorize(auth(THREE_DS_UNLESS_OFF_SESSION, off_session=True))
    assert off_session.outcome is AuthorizeOutcome.AUTHORIZED


@pytest.mark.parametrize(
    ("currency", "amount"),
    [("jpy", 1050), ("kwd", 1050), ("kwd", 1), ("jpy", 1), ("usd", 99_999_999)],
)
async def test_amounts_are_exact(
    connector: Connector, kind: str, admin: Admin, currency: str, amount: int
) -> None:
    """JPY has no decimals and KWD three: 1050 is ¥1050 and 1.050 KD at either acquirer."""
    request = auth(VISA, amount=amount, currency=currency, capture=True)
    result = await connector.authorize(request)
    assert result.outcome is AuthorizeOutcome.CAPTURED
    record = admin.record(kind, request.reference)
    assert (record["amount"], record["currency"], record["captured"]) == (
        amount,
        currency.upper(),
        amount,
    )
    status = await connector.status(request.reference)
    assert (status.amount, status.currency, status.amount_captured) == (amount, currency, amount)
