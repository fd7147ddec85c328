"""Pure mapping: amounts, code tables beyond what the test cards reach, ``Retry-After``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.connectors import http
from kassa.connectors.acquirer_a import mapper as arvona
from kassa.connectors.acquirer_b import mapper as beltrane
from kassa.connectors.amounts import from_decimal_string, to_decimal_string
from kassa.connectors.base import (
    AuthorizeOutcome,
    ModificationOutcome,
    OutcomeUnknown,
    PaymentState,
    Rejected,
)

from .support import auth, modification


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1050, "eur", "10.50"),
        (5, "eur", "0.05"),
        (1050, "jpy", "1050"),
        (1050, "kwd", "1.050"),
        (1, "kwd", "0.001"),
        (1, "bhd", "0.001"),
        (0, "usd", "0.00"),
        (-250, "usd", "-2.50"),
        (123_456_789_012, "usd", "1234567890.12"),
    ],
)
def test_decimal_strings(amount: int, currency: str, text: str) -> None:
    assert to_decimal_string(amount, currency) == text
    assert from_decimal_string(text, currency) == amount


@pytest.mark.parametrize(
    ("text", "currency", "amount"),
    [("10.5", "eur", 1050), ("10", "eur", 1000), ("1.05", "kwd", 1050), ("10.500", "eur", 1050),
     ("1050.0", "jpy", 1050), (" 3.1 ", "usd", 310)],
)  # fmt: skip
def test_fewer_decimals_or_trailing_zeros_are_exact(text: str, currency: str, amount: int) -> None:
    assert from_decimal_string(text, currency) == amount


@pytest.mark.parametrize(
    ("text", "currency"),
    [("10.505", "eur"), ("1050.5", "jpy"), ("1.0501", "kwd"), ("1e3", "usd"), ("", "usd"),
     ("NaN", "usd"), ("10,50", "eur"), ("+1", "usd"), ("1.", "usd")],
)  # fmt: skip
def test_nothing_is_rounded_or_guessed(text: str, currency: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the message varies by input)
        from_decimal_string(text, currency)


def test_unknown_currency_is_rejected() -> None:
    with pytest.raises(Rejected):
        to_decimal_string(100, "xyz")


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(["jpy", "eur", "kwd"]))
def test_round_trip(amount: int, currency: str) -> None:
    assert from_decimal_string(to_decimal_string(amount, currency), currency) == amount


# Arvona codes the test cards do not reach.
@pytest.mark.parametrize(
    ("code", "raw", "expected"),
    [
        ("20", "", ("card_declined", "fraudulent")),
        ("7", "", ("card_declined", "invalid_amount")),
        ("8", "", ("incorrect_number", None)),
        ("5", "62 : Restricted card", ("card_declined", "generic_decline")),
        ("5", "43 : Stolen card", ("card_declined", "stolen_card")),
        ("999", "", ("card_declined", "generic_decline")),
        (None, None, ("card_declined", "generic_decline")),
    ],
)
def test_arvona_refusals(code: str | None, raw: str | None, expected: tuple) -> None:
    assert arvona.refusal_codes(code, raw) == expected


def test_arvona_results_that_are_not_final() -> None:
    for result in ("Pending", "Received", None):
        with pytest.raises(OutcomeUnknown):
            arvona.authorize_result({"resultCode": result, "pspReference": "P"}, capture=False)
    with pytest.raises(OutcomeUnknown):
        arvona.modification_result({"status": "error"})
    assert arvona.status_result([{"resultCode": "Received"}]).state is PaymentState.PENDING
    assert arvona.card_error("130", "Reference must be 1 to 80 characters") is None


# Beltrane codes the test cards do not reach.
@pytest.mark.parametrize(
    ("fields", "outcome", "codes"),
    [
        ({"RESULT": "12", "HOSTCODE": "51"}, AuthorizeOutcome.DECLINED,
         ("card_declined", "insufficient_funds")),
        ({"RESULT": "12", "HOSTCODE": "99"}, AuthorizeOutcome.DECLINED,
         ("card_declined", "generic_decline")),
        ({"RESULT": "161"}, AuthorizeOutcome.DECLINED,
         ("payment_intent_authentication_failure", None)),
        ({"RESULT": "126"}, AuthorizeOutcome.DECLINED, ("card_declined", "generic_decline")),
        ({"RESULT": "160", "PNREF": "P"}, AuthorizeOutcome.REQUIRES_ACTION, (None, None)),
    ],
)  # fmt: skip
def test_beltrane_sale_results(fields: dict, outcome: AuthorizeOutcome, codes: tuple) -> None:
    result = beltrane.sale_result(fields, capture=False)
    assert (result.outcome, (result.failure_code, result.decline_code)) == (outcome, codes)


@pytest.mark.parametrize("result", ["2", "3", "4", "7", "19"])
def test_beltrane_request_errors_are_rejections(result: str) -> None:
    with pytest.raises(Rejected) as caught:
        beltrane.sale_result({"RESULT": result, "RESPMSG": "x"}, capture=True)
    assert caught.value.code == result


def test_beltrane_follow_ups() -> None:
    ok = beltrane.modification_result({"RESULT": "0", "PNREF": "C1"})
    assert (ok.outcome, ok.psp_reference) == (ModificationOutcome.SUCCEEDED, "C1")
    for code in ("105", "108", "111"):
        assert beltrane.modification_result({"RESULT": code}).outcome is ModificationOutcome.FAILED
    with pytest.raises(Rejected):
        beltrane.modification_result({"RESULT": "19"})


def test_beltrane_inquiry_states() -> None:
    base = {"RESULT": "0", "PNREF": "P", "AMT": "1.050", "CURRENCY": "KWD"}
    settled = beltrane.status_result({**base, "TRANSSTATE": "8", "CAPTUREDAMT": "1.050"})
    assert (settled.state, settled.amount, settled.amount_captured) == (
        PaymentState.CAPTURED,
        1050,
        1050,
    )
    declined = beltrane.status_result({**base, "TRANSSTATE": "1", "ORIGRESULT": "114"})
    assert (declined.state, declined.failure_code) == (PaymentState.DECLINED, "incorrect_cvc")
    challenge = beltrane.status_result({**base, "TRANSSTATE": "1", "ORIGRESULT": "160"})
    assert challenge.state is PaymentState.REQUIRES_ACTION
    assert beltrane.status_result({**base, "TRANSSTATE": "11"}).state is PaymentState.VOIDED
    assert beltrane.status_result({"RESULT": "19"}).state is PaymentState.NOT_FOUND


def test_beltrane_forms() -> None:
    form = beltrane.sale_form(auth(amount=1050, currency="kwd", capture=True, off_session=True))
    assert (form["TRXTYPE"], form["AMT"], form["CURRENCY"], form["EXPDATE"]) == (
        "S",
        "1.050",
        "KWD",
        "0340",
    )
    assert form["RECURRING"] == "Y"
    partial = beltrane.follow_up_form("D", modification("P", 5, "jpy", final=False))
    assert (partial["AMT"], partial["CAPTURECOMPLETE"]) == ("5", "N")
    assert "AMT" not in beltrane.follow_up_form("V", modification("P", 5))


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("2.5", 2.5), ("-3", 0.0), ("", None), (None, None), ("soon", None),
     ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0)],
)  # fmt: skip
def test_retry_after(header: str | None, seconds: float | None) -> None:
    now = 1445412470.0  # ten seconds before that date
    assert http.retry_after(header, now=now) == seconds
