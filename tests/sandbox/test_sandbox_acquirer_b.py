"""Beltrane Gateway (acquirer_b), through its form-encoded HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from .support import (
    B,
    Hook,
    Sandbox,
    beltrane_call,
    beltrane_sale,
    check_timestamped,
    unique,
)


def record(sb: Sandbox, custref: str) -> dict[str, Any]:
    [rec] = sb.records(B, custref)
    return rec


@pytest.mark.parametrize(
    ("currency", "amt", "minor", "shown"),
    [
        ("USD", "10.50", 1050, "10.50"),
        ("EUR", "99.06", 9906, "99.06"),
        ("EUR", "10.5", 1050, "10.50"),
        ("JPY", "1050", 1050, "1050"),
        ("JPY", "1050.00", 1050, "1050"),
        ("KWD", "1.050", 1050, "1.050"),
        ("KWD", "0.001", 1, "0.001"),
        ("BHD", "12345.678", 12345678, "12345.678"),
    ],
)
def test_decimal_amounts_are_converted_exactly(
    sandbox: Sandbox, currency: str, amt: str, minor: int, shown: str
) -> None:
    custref = unique("amt")
    answer = beltrane_sale(sandbox, amt=amt, currency=currency, custref=custref)
    assert answer["RESULT"] == "0", answer
    assert (answer["AMT"], answer["CURRENCY"]) == (shown, currency)
    assert len(answer["PNREF"]) == 12
    rec = record(sandbox, custref)
    assert (rec["amount"], rec["captured"], rec["currency"]) == (minor, minor, currency)


@pytest.mark.parametrize(
    ("currency", "amt"), [("EUR", "10.005"), ("JPY", "10.5"), ("KWD", "1.0005"), ("USD", "-1"),
                          ("USD", "1e3"), ("USD", "0.00")],
)  # fmt: skip
def test_amounts_more_precise_than_the_currency_are_rejected(
    sandbox: Sandbox, currency: str, amt: str
) -> None:
    assert beltrane_sale(sandbox, amt=amt, currency=currency)["RESULT"] == "4"


def test_authorisation_answer_fields(sandbox: Sandbox) -> None:
    answer = beltrane_sale(sandbox, "5555555555554444", trx="A")
    assert answer["RESULT"] == "0"
    assert answer["RESPMSG"] == "Approved"
    assert len(answer["AUTHCODE"]) == 6
    assert (answer["CARDTYPE"], answer["ACCT"], answer["CVV2MATCH"]) == ("1", "4444", "Y")


@pytest.mark.parametrize(
    ("acct", "result", "host"),
    [
        ("4000000000000002", "12", "05"),
        ("4000000000009995", "50", "51"),
        ("4000000000009987", "12", "41"),
        ("4000000000009979", "12", "43"),
        ("4000000000000069", "24", "54"),
        ("4000000000000127", "114", "N7"),
        ("4000000000000119", "104", "91"),
        ("4242424242424241", "23", "14"),
    ],
)
def test_declines_answer_numeric_results(
    sandbox: Sandbox, acct: str, result: str, host: str
) -> None:
    custref = unique("dec")
    answer = beltrane_sale(sandbox, acct, custref=custref)
    assert (answer["RESULT"], answer["HOSTCODE"]) == (result, host)
    assert record(sandbox, custref)["captured"] == 0


def test_unsupported_cards_currencies_and_credentials(sandbox: Sandbox) -> None:
    assert beltrane_sale(sandbox, "378282246310005")["RESULT"] == "25"
    assert beltrane_sale(sandbox, currency="CHF")["RESULT"] == "7"
    assert beltrane_sale(sandbox, EXPDATE="1399")["RESULT"] == "24"
    assert beltrane_call(sandbox, TRXTYPE="S", PWD="wrong")["RESULT"] == "1"
    assert beltrane_call(sandbox, TRXTYPE="X")["RESULT"] == "3"
    assert beltrane_sale(sandbox, TENDER="A")["RESULT"] == "2"
    discover = beltrane_sale(sandbox, "6011111111111117")
    assert (discover["RESULT"], discover["CARDTYPE"]) == ("0", "2")


def test_delayed_captures_partial_and_several(sandbox: Sandbox) -> None:
    custref = unique("cap")
    auth = beltrane_sale(sandbox, trx="A", amt="100.00", custref=custref)
    pnref = auth["PNREF"]
    first = beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref, AMT="30.00", CAPTURECOMPLETE="N")
    assert (first["RESULT"], first["AMT"], first["ORIGID"]) == ("0", "30.00", pnref)
    assert first["PNREF"] != pnref
    too_much = beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref, AMT="80.00", CAPTURECOMPLETE="N")
    assert too_much["RESULT"] == "111"
    last = beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref, AMT="50.00")
    assert last["RESULT"] == "0"
    # The last capture closed the authorization: the remaining 20.00 is released.
    assert beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref, AMT="1.00")["RESULT"] == "111"
    rec = record(sandbox, custref)
    assert (rec["captured"], rec["closed"]) == (8000, True)
    full = beltrane_sale(sandbox, trx="A", amt="7.00")
    assert beltrane_call(sandbox, TRXTYPE="D", ORIGID=full["PNREF"])["AMT"] == "7.00"
    assert beltrane_call(sandbox, TRXTYPE="D", ORIGID="NOSUCHPNREF0")["RESULT"] == "19"


def test_credits_full_partial_and_several(sandbox: Sandbox) -> None:
    custref = unique("cr")
    pnref = beltrane_sale(sandbox, amt="50.00", custref=custref)["PNREF"]
    assert beltrane_call(sandbox, TRXTYPE="C", ORIGID=pnref, AMT="20.00")["RESULT"] == "0"
    assert beltrane_call(sandbox, TRXTYPE="C", ORIGID=pnref, AMT="40.00")["RESULT"] == "105"
    rest = beltrane_call(sandbox, TRXTYPE="C", ORIGID=pnref)
    assert (rest["RESULT"], rest["AMT"]) == ("0", "30.00")
    assert beltrane_call(sandbox, TRXTYPE="C", ORIGID=pnref, AMT="0.01")["RESULT"] == "105"
    assert record(sandbox, custref)["refunded"] == 5000
    # A credit may reference the delayed capture instead of the authorization.
    auth = beltrane_sale(sandbox, trx="A", amt="9.99")
    capture = beltrane_call(sandbox, TRXTYPE="D", ORIGID=auth["PNREF"])
    assert beltrane_call(sandbox, TRXTYPE="C", ORIGID=capture["PNREF"], AMT="9.99")["RESULT"] == "0"


def test_void(sandbox: Sandbox) -> None:
    custref = unique("void")
    pnref = beltrane_sale(sandbox, trx="A", custref=custref)["PNREF"]
    assert beltrane_call(sandbox, TRXTYPE="V", ORIGID=pnref)["RESULT"] == "0"
    assert beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref)["RESULT"] == "111"
    assert beltrane_call(sandbox, TRXTYPE="V", ORIGID=pnref)["RESULT"] == "108"
    assert record(sandbox, custref)["status"] == "cancelled"
    sold = beltrane_sale(sandbox)["PNREF"]
    assert beltrane_call(sandbox, TRXTYPE="V", ORIGID=sold)["RESULT"] == "108"


def test_inquiry_by_custref_and_origid_follows_the_transaction(sandbox: Sandbox) -> None:
    custref = unique("inq")
    pnref = beltrane_sale(sandbox, trx="A", amt="12.34", custref=custref)["PNREF"]
    by_ref = beltrane_call(sandbox, TRXTYPE="I", CUSTREF=custref)
    assert (by_ref["PNREF"], by_ref["ORIGRESULT"], by_ref["TRANSSTATE"]) == (pnref, "0", "3")
    capture = beltrane_call(sandbox, TRXTYPE="D", ORIGID=pnref)["PNREF"]
    by_id = beltrane_call(sandbox, TRXTYPE="I", ORIGID=pnref)
    assert (by_id["TRANSSTATE"], by_id["CAPTUREDAMT"], by_id["AMT"]) == ("6", "12.34", "12.34")
    of_capture = beltrane_call(sandbox, TRXTYPE="I", ORIGID=capture)
    assert (of_capture["TRXTYPE"], of_capture["ORIGPNREF"]) == ("D", pnref)
    sandbox.advance_past_close(1)
    assert beltrane_call(sandbox, TRXTYPE="I", CUSTREF=custref)["TRANSSTATE"] == "8"
    declined = unique("inq")
    beltrane_sale(sandbox, "4000000000009995", custref=declined)
    answer = beltrane_call(sandbox, TRXTYPE="I", CUSTREF=declined)
    assert (answer["ORIGRESULT"], answer["TRANSSTATE"]) == ("50", "1")
    assert beltrane_call(sandbox, TRXTYPE="I", CUSTREF=unique("none"))["RESULT"] == "19"


def test_request_id_makes_retries_safe(sandbox: Sandbox) -> None:
    custref, key = unique("dup"), unique("rid")
    first = beltrane_sale(sandbox, custref=custref, key=key)
    again = beltrane_sale(sandbox, custref=custref, key=key)
    assert again.pop("DUPLICATE") == "1"
    assert again == first
    other = beltrane_sale(sandbox, custref=custref, key=key, amt="11.00")
    assert (other["RESULT"], other["DUPLICATE"]) == ("7", "-1")
    rec = record(sandbox, custref)
    assert rec["captured"] == 1000
    credit_key = unique("rid")
    beltrane_call(sandbox, credit_key, TRXTYPE="C", ORIGID=first["PNREF"], AMT="4.00")
    beltrane_call(sandbox, credit_key, TRXTYPE="C", ORIGID=first["PNREF"], AMT="4.00")
    assert record(sandbox, custref)["refunded"] == 400


def test_three_ds(sandbox: Sandbox) -> None:
    assert beltrane_sale(sandbox, "4000002760003184")["RESULT"] == "160"
    threeds = sandbox.client("threeds")
    auth = threeds.post(
        "/v1/authentications",
        json={"card_number": "4000002760003184", "amount": 1000, "currency": "USD",
              "return_url": "https://shop.test/3ds"},
        headers={"authorization": f"Bearer {sandbox.creds('threeds')['api_key']}"},
    ).json()  # fmt: skip
    assert auth["status"] == "C"
    done = httpx.post(auth["challenge_url"], data={"action": "authenticate"})
    token = parse_qs(urlsplit(done.headers["location"]).query)["threeDSResult"][0]
    assert beltrane_sale(sandbox, "4000002760003184", THREEDSRESULT=token)["RESULT"] == "0"
    assert (
        beltrane_sale(sandbox, "4000002760003184", amt="10.01", THREEDSRESULT=token)["RESULT"]
        == "161"
    )
    assert beltrane_sale(sandbox, "4000002500003155", RECURRING="Y")["RESULT"] == "0"


def test_silent_posts_for_captures_credits_voids_and_disputes(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(B)
    custref = unique("post")
    pnref = beltrane_sale(sandbox, custref=custref, amt="25.00")["PNREF"]
    credit = beltrane_call(sandbox, TRXTYPE="C", ORIGID=pnref, AMT="5.00")["PNREF"]
    auth = beltrane_sale(sandbox, trx="A", amt="8.00")["PNREF"]
    capture = beltrane_call(sandbox, TRXTYPE="D", ORIGID=auth, AMT="3.00", CAPTURECOMPLETE="N")[
        "PNREF"
    ]
    void = beltrane_call(sandbox, TRXTYPE="V", ORIGID=auth)["PNREF"]
    disputed = unique("post")
    dpn = beltrane_sale(sandbox, "4000000000000259", custref=disputed, amt="30.00")["PNREF"]
    got = h.wait(lambda rs: len(rs) >= 6)
    for r in got:
        check_timestamped(r.headers["x-beltrane-signature"], r.body, sandbox.secret(B))
    posts = {(f["EVENT"], f["PNREF"]): f for f in (r.form() for r in got) if "PNREF" in f}
    assert posts[("SALE", pnref)]["AMT"] == "25.00"
    assert posts[("SALE", pnref)]["CUSTREF"] == custref
    assert (posts[("CREDIT", credit)]["ORIGID"], posts[("CREDIT", credit)]["RESULT"]) == (
        pnref,
        "0",
    )
    assert (posts[("CAPTURE", capture)]["ORIGID"], posts[("CAPTURE", capture)]["AMT"]) == (
        auth, "3.00",
    )  # fmt: skip
    assert posts[("VOID", void)]["ORIGID"] == auth
    [opened] = [f for f in (r.form() for r in got) if f["EVENT"] == "DISPUTE_OPENED"]
    assert opened["ORIGID"] == dpn
    assert (opened["AMT"], opened["STATUS"], opened["CUSTREF"]) == (
        "30.00",
        "NEEDS_RESPONSE",
        disputed,
    )
    c = sandbox.creds(B)
    login = {
        "USER": c["user"],
        "VENDOR": c["vendor"],
        "PARTNER": c["partner"],
        "PWD": c["password"],
    }
    look = sandbox.client(B).post("/disputes", data={**login, "DISPUTEID": opened["DISPUTEID"]})
    assert dict(parse_qsl(look.text))["STATUS"] == "NEEDS_RESPONSE"
    answer = sandbox.client(B).post(
        "/disputes",
        data={**login, "ACTION": "RESPOND", "DISPUTEID": opened["DISPUTEID"],
              "EVIDENCE": "winning_evidence: signed delivery receipt"},
    )  # fmt: skip
    assert dict(parse_qsl(answer.text))["RESULT"] == "0"
    got = h.wait(lambda rs: any(r.form()["EVENT"] == "DISPUTE_WON" for r in rs))
    [won] = [r.form() for r in got if r.form()["EVENT"] == "DISPUTE_WON"]
    assert (won["ORIGID"], won["STATUS"]) == (dpn, "WON")
