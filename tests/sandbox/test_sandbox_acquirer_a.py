"""Arvona Checkout (acquirer_a), through its HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .support import (
    A,
    Hook,
    Sandbox,
    arvona_authorised,
    arvona_headers,
    arvona_item_signature,
    arvona_items,
    arvona_modify,
    arvona_pay,
    arvona_status,
    luhn_complete,
    unique,
)


def items_until(
    hook: Hook, sb: Sandbox, cond: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    secret = sb.secret(A)
    got = hook.wait(lambda rs: cond(arvona_items(rs, secret)))
    return arvona_items(got, secret)


def events(items: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [i for i in items if i["eventCode"] == code]


@pytest.mark.parametrize(
    ("number", "cvc", "brand"),
    [
        ("4242424242424242", "737", "visa"),
        ("5555555555554444", "737", "mastercard"),
        ("378282246310005", "7373", "amex"),
    ],
)
def test_success_cards_are_authorised_with_card_details(
    sandbox: Sandbox, number: str, cvc: str, brand: str
) -> None:
    result = arvona_authorised(sandbox, number, cvc=cvc, amount=2599)
    assert len(result["pspReference"]) == 16
    assert result["amount"] == {"value": 2599, "currency": "EUR"}
    data = result["additionalData"]
    assert data["paymentMethod"] == brand
    assert data["cardSummary"] == number[-4:]
    assert data["cardIssuingCountry"] == "US"
    assert data["fundingSource"] == "CREDIT"
    assert len(data["authCode"]) == 6


@pytest.mark.parametrize(
    ("number", "reason", "code", "raw"),
    [
        ("4000000000000002", "Refused", "2", "05 : Do not honor"),
        ("4000000000009995", "Not enough balance", "12", "51 : Insufficient funds"),
        ("4000000000009987", "Blocked Card", "5", "41 : Lost card"),
        ("4000000000009979", "Blocked Card", "5", "43 : Stolen card"),
        ("4000000000000069", "Expired Card", "6", "54 : Expired card"),
        ("4000000000000127", "CVC Declined", "24", "N7 : CVV2 failure"),
    ],
)
def test_decline_cards_are_refused_with_codes(
    sandbox: Sandbox, number: str, reason: str, code: str, raw: str
) -> None:
    reference = unique("decline")
    r = arvona_pay(sandbox, number, reference=reference)
    assert r.status_code == 200
    body = r.json()
    assert (body["resultCode"], body["refusalReason"], body["refusalReasonCode"]) == (
        "Refused", reason, code,
    )  # fmt: skip
    assert body["additionalData"]["refusalReasonRaw"] == raw
    [record] = sandbox.records(A, reference)
    assert record["status"] == "refused"
    assert record["captured"] == 0


def test_processing_error_card_answers_error(sandbox: Sandbox) -> None:
    body = arvona_pay(sandbox, "4000000000000119").json()
    assert body["resultCode"] == "Error"
    assert body["refusalReasonCode"] == "4"


def test_validation_errors(sandbox: Sandbox) -> None:
    bad_luhn = arvona_pay(sandbox, "4242424242424241")
    assert (bad_luhn.status_code, bad_luhn.json()["errorCode"]) == (422, "101")
    discover = arvona_pay(sandbox, "6011111111111117")
    assert (discover.status_code, discover.json()["errorCode"]) == (422, "905")
    mxn = arvona_pay(sandbox, currency="MXN")
    assert (mxn.status_code, mxn.json()["errorCode"]) == (422, "138")
    zero = arvona_pay(sandbox, amount=0)
    assert (zero.status_code, zero.json()["errorCode"]) == (422, "137")
    month = arvona_pay(sandbox, expiry=("13", "2040"))
    assert (month.status_code, month.json()["errorCode"]) == (422, "129")


def test_credentials_and_merchant_account_are_checked(sandbox: Sandbox) -> None:
    r = sandbox.client(A).post("/v1/payments", json={}, headers={"x-api-key": "wrong"})
    assert (r.status_code, r.json()["errorType"]) == (401, "security")
    wrong = arvona_pay(sandbox, merchantAccount="SomeoneElse")
    assert (wrong.status_code, wrong.json()["errorCode"]) == (403, "901")


def test_card_expiry_and_cvc_length_are_checked(sandbox: Sandbox) -> None:
    assert arvona_pay(sandbox, expiry=("01", "2020")).json()["refusalReason"] == "Expired Card"
    assert (
        arvona_pay(sandbox, "378282246310005", cvc="737").json()["refusalReason"] == "CVC Declined"
    )


def test_unknown_luhn_valid_cards_succeed_with_bin_data(sandbox: Sandbox) -> None:
    plain = arvona_authorised(sandbox, luhn_complete("4917610000"))
    assert plain["additionalData"]["paymentMethod"] == "visa"
    for prefix, country, funding in [
        ("400000276", "DE", "CREDIT"),
        ("400000250", "FR", "CREDIT"),
        ("400000826", "GB", "DEBIT"),
        ("400000392", "JP", "CREDIT"),
        ("400000076", "BR", "CREDIT"),
        ("400000356", "IN", "DEBIT"),
        ("400000036", "AU", "CREDIT"),
        ("400000710", "ZA", "PREPAID"),
    ]:
        data = arvona_authorised(sandbox, luhn_complete(prefix))["additionalData"]
        assert (data["cardIssuingCountry"], data["fundingSource"]) == (country, funding)
    mc_debit = arvona_authorised(sandbox, luhn_complete("520082"))["additionalData"]
    assert (mc_debit["paymentMethod"], mc_debit["fundingSource"]) == ("mastercard", "DEBIT")


def test_captures_are_asynchronous_partial_and_several(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(A)
    sandbox.admin(A, "POST", "/admin/settings", {"modification_delay_s": 60})
    psp = arvona_authorised(sandbox, amount=1000)["pspReference"]
    first = arvona_modify(sandbox, psp, "captures", 300)
    assert first.status_code == 201
    assert first.json()["status"] == "received"
    assert first.json()["paymentPspReference"] == psp
    # Not decided yet: the acquirer only received it.
    assert arvona_status(sandbox, psp)["capturedAmount"] == 0
    assert arvona_status(sandbox, psp)["modifications"][0]["status"] == "received"
    second = arvona_modify(sandbox, psp, "captures", 200).json()["pspReference"]
    too_much = arvona_modify(sandbox, psp, "captures", 600).json()["pspReference"]
    sandbox.advance(60)
    view = arvona_status(sandbox, psp)
    assert view["capturedAmount"] == 500
    assert [m["status"] for m in view["modifications"]] == ["success", "success", "failed"]
    items = items_until(h, sandbox, lambda its: len(events(its, "CAPTURE")) == 3)
    captures = {i["pspReference"]: i for i in events(items, "CAPTURE")}
    assert captures[first.json()["pspReference"]]["success"] == "true"
    assert captures[first.json()["pspReference"]]["amount"] == {"value": 300, "currency": "EUR"}
    assert captures[first.json()["pspReference"]]["originalReference"] == psp
    assert captures[second]["success"] == "true"
    assert captures[too_much]["success"] == "false"
    assert captures[too_much]["reason"] == "Insufficient authorised amount remaining"
    auth = events(items, "AUTHORISATION")
    assert auth
    assert auth[0]["pspReference"] == psp
    assert auth[0]["success"] == "true"


def test_refunds_full_partial_and_several(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(A)
    psp = arvona_authorised(sandbox, amount=1000, captureDelayHours=0)["pspReference"]
    assert arvona_status(sandbox, psp)["capturedAmount"] == 1000
    refunds = [
        arvona_modify(sandbox, psp, "refunds", v).json()["pspReference"] for v in (400, 600, 1)
    ]
    sandbox.advance(1)
    view = arvona_status(sandbox, psp)
    assert view["refundedAmount"] == 1000
    items = items_until(h, sandbox, lambda its: len(events(its, "REFUND")) == 3)
    by_id = {i["pspReference"]: i for i in events(items, "REFUND")}
    assert [by_id[r]["success"] for r in refunds] == ["true", "true", "false"]
    assert by_id[refunds[2]]["reason"] == "Refund amount exceeds the captured amount"
    assert events(items, "CAPTURE")[0]["amount"]["value"] == 1000
    [record] = sandbox.records(A, view["merchantReference"])
    assert [i["gross"] for i in record["ledger"]] == [1000, -400, -600]


def test_cancel_releases_the_authorisation(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(A)
    psp = arvona_authorised(sandbox)["pspReference"]
    arvona_modify(sandbox, psp, "cancels")
    sandbox.advance(1)
    capture = arvona_modify(sandbox, psp, "captures", 100).json()["pspReference"]
    sandbox.advance(1)
    assert arvona_status(sandbox, psp)["resultCode"] == "Cancelled"
    items = items_until(h, sandbox, lambda its: bool(events(its, "CAPTURE")))
    assert events(items, "CANCELLATION")[0]["success"] == "true"
    [failed] = [i for i in events(items, "CAPTURE") if i["pspReference"] == capture]
    assert failed["success"] == "false"


def test_delayed_automatic_capture(sandbox: Sandbox) -> None:
    psp = arvona_authorised(sandbox, amount=700, captureDelayHours=2)["pspReference"]
    assert arvona_status(sandbox, psp)["capturedAmount"] == 0
    sandbox.advance(2 * 3600)
    assert arvona_status(sandbox, psp)["capturedAmount"] == 700


def test_status_inquiry_by_merchant_reference(sandbox: Sandbox) -> None:
    reference = unique("inq")
    first = arvona_pay(sandbox, "4000000000000002", reference=reference).json()["pspReference"]
    second = arvona_authorised(sandbox, reference=reference)["pspReference"]
    r = sandbox.client(A).get(
        "/v1/payments", params={"merchantReference": reference}, headers=arvona_headers(sandbox)
    )
    assert [(p["pspReference"], p["resultCode"]) for p in r.json()["data"]] == [
        (first, "Refused"), (second, "Authorised"),
    ]  # fmt: skip
    missing = sandbox.client(A).get(
        "/v1/payments/NOSUCHPAYMENT000", headers=arvona_headers(sandbox)
    )
    assert missing.status_code == 422


def test_idempotency_key_replays_and_never_charges_twice(sandbox: Sandbox) -> None:
    reference, key = unique("idem"), unique("key")
    first = arvona_pay(sandbox, reference=reference, key=key)
    again = arvona_pay(sandbox, reference=reference, key=key)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(sandbox.records(A, reference)) == 1
    other = arvona_pay(sandbox, reference=reference, key=key, amount=5)
    assert (other.status_code, other.json()["errorCode"]) == (422, "704")
    psp = first.json()["pspReference"]
    c1 = arvona_modify(sandbox, psp, "captures", 1000, key="cap-" + key)
    # Same key and body: the same capture, not a second one.
    body = c1.request.content
    c2 = sandbox.client(A).post(
        f"/v1/payments/{psp}/captures", content=body,
        headers={**arvona_headers(sandbox, "cap-" + key), "content-type": "application/json"},
    )  # fmt: skip
    assert c2.json()["pspReference"] == c1.json()["pspReference"]
    sandbox.advance(1)
    [record] = sandbox.records(A, reference)
    assert record["captured"] == 1000
    assert len(record["modifications"]) == 1


def test_three_ds_challenge_then_details(sandbox: Sandbox) -> None:
    reference = unique("3ds")
    r = arvona_pay(
        sandbox, "4000002760003184", reference=reference, returnUrl="https://shop.test/back?o=1"
    )
    body = r.json()
    assert body["resultCode"] == "RedirectShopper"
    action = body["action"]
    assert action["url"].startswith(sandbox.url("threeds") + "/challenge/")
    page = httpx.get(action["url"])
    assert "Authenticate" in page.text
    assert "<form" in page.text
    done = httpx.post(action["url"], data={"action": "authenticate"})
    assert done.status_code == 303
    location = urlsplit(done.headers["location"])
    assert (location.netloc, location.path) == ("shop.test", "/back")
    query = parse_qs(location.query)
    assert query["o"] == ["1"]
    token = query["threeDSResult"][0]
    details = sandbox.client(A).post(
        "/v1/payments/details", json={"details": {"threeDSResult": token}},
        headers=arvona_headers(sandbox),
    )  # fmt: skip
    assert details.json()["resultCode"] == "Authorised"
    assert details.json()["pspReference"] == body["pspReference"]
    [record] = sandbox.records(A, reference)
    assert record["status"] == "authorised"


def test_three_ds_failed_challenge_is_refused(sandbox: Sandbox) -> None:
    body = arvona_pay(sandbox, "4000002760003184", returnUrl="https://shop.test/back").json()
    done = httpx.post(body["action"]["url"], data={"action": "fail"})
    token = parse_qs(urlsplit(done.headers["location"]).query)["threeDSResult"][0]
    details = (
        sandbox.client(A)
        .post(
            "/v1/payments/details",
            json={"pspReference": body["pspReference"], "details": {"threeDSResult": token}},
            headers=arvona_headers(sandbox),
        )
        .json()
    )
    assert (details["resultCode"], details["refusalReasonCode"]) == ("Refused", "11")


def test_three_ds_needs_return_url(sandbox: Sandbox) -> None:
    r = arvona_pay(sandbox, "4000002760003184")
    assert r.status_code == 422


def test_card_set_up_for_future_use_skips_three_ds_when_recurring(sandbox: Sandbox) -> None:
    recurring = arvona_pay(sandbox, "4000002500003155", shopperInteraction="ContAuth").json()
    assert recurring["resultCode"] == "Authorised"
    assert recurring["additionalData"]["cardIssuingCountry"] == "FR"
    on_session = arvona_pay(sandbox, "4000002500003155", returnUrl="https://shop.test/r").json()
    assert on_session["resultCode"] == "RedirectShopper"


def test_pre_authenticated_payment_with_frictionless_result(sandbox: Sandbox) -> None:
    auth = (
        sandbox.client("threeds")
        .post(
            "/v1/authentications",
            json={"card_number": "4242424242424242", "amount": 1234, "currency": "EUR"},
            headers={"authorization": f"Bearer {sandbox.creds('threeds')['api_key']}"},
        )
        .json()
    )
    assert auth["status"] == "Y"
    ok = arvona_pay(sandbox, amount=1234, threeDSResult=auth["result"]).json()
    assert ok["resultCode"] == "Authorised"
    # The result is bound to the amount: it does not authenticate another payment.
    other = arvona_pay(sandbox, amount=9999, threeDSResult=auth["result"]).json()
    assert other["refusalReasonCode"] == "11"
    forged = arvona_pay(sandbox, amount=1234, threeDSResult=auth["result"][:-2] + "xx").json()
    assert forged["refusalReasonCode"] == "11"


def test_disputes_open_after_capture_and_follow_the_evidence(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(A)
    won = arvona_authorised(sandbox, "4000000000000259", amount=5000, captureDelayHours=0)[
        "pspReference"
    ]
    lost = arvona_authorised(sandbox, "4000000000000259", amount=3000, captureDelayHours=0)[
        "pspReference"
    ]
    silent = arvona_authorised(sandbox, "4000000000000259", amount=2000, captureDelayHours=0)
    items = items_until(h, sandbox, lambda its: len(events(its, "CHARGEBACK")) == 3)
    opened = {i["originalReference"]: i for i in events(items, "CHARGEBACK")}
    assert opened[won]["amount"] == {"value": 5000, "currency": "EUR"}
    assert opened[won]["reason"] == "Fraud"
    [dispute] = arvona_status(sandbox, won)["disputes"]
    assert dispute["status"] == "needs_response"
    # A disputed payment cannot also be refunded.
    arvona_modify(sandbox, won, "refunds", 100)
    sandbox.advance(1)
    assert arvona_status(sandbox, won)["modifications"][-1]["status"] == "failed"
    for psp, evidence in ((won, "winning_evidence"), (lost, "losing_evidence")):
        dispute_id = opened[psp]["pspReference"]
        r = sandbox.client(A).post(
            f"/v1/disputes/{dispute_id}/defend", json={"evidence": evidence},
            headers=arvona_headers(sandbox),
        )  # fmt: skip
        assert r.json() == {"disputeServiceResult": {"success": True}}
    sandbox.advance(1)
    decided = ("CHARGEBACK_REVERSED", "CHARGEBACK_LOST")
    items = items_until(h, sandbox, lambda its: all(events(its, code) for code in decided))
    assert [i["originalReference"] for i in events(items, "CHARGEBACK_REVERSED")] == [won]
    assert [i["originalReference"] for i in events(items, "CHARGEBACK_LOST")] == [lost]
    assert arvona_status(sandbox, won)["disputes"][0]["status"] == "won"
    again = sandbox.client(A).post(
        f"/v1/disputes/{opened[won]['pspReference']}/defend", json={"evidence": "more"},
        headers=arvona_headers(sandbox),
    )  # fmt: skip
    assert again.json()["disputeServiceResult"]["success"] is False
    # Without a defence the dispute is lost when its deadline passes.
    sandbox.advance(8 * 86400)
    assert arvona_status(sandbox, silent["pspReference"])["disputes"][0]["status"] == "lost"
    [record] = sandbox.records(A, arvona_status(sandbox, won)["merchantReference"])
    assert [(i["kind"], i["gross"], i["fee"]) for i in record["ledger"]] == [
        ("capture", 5000, 70), ("chargeback", -5000, 1500), ("chargeback_reversal", 5000, 0),
    ]  # fmt: skip


def test_notification_batches_are_signed_per_item(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(A)
    sandbox.admin(A, "POST", "/admin/settings", {"modification_delay_s": 30})
    psps = [arvona_authorised(sandbox, amount=100 + i)["pspReference"] for i in range(12)]
    for psp in psps:
        arvona_modify(sandbox, psp, "captures", 100)
    sandbox.advance(30)
    got = h.wait(lambda rs: sum(len(r.json()["notificationItems"]) for r in rs) >= 24)
    assert max(len(r.json()["notificationItems"]) for r in got) > 1
    assert all(len(r.json()["notificationItems"]) <= 10 for r in got)
    items = arvona_items(got, sandbox.secret(A))
    assert {i["originalReference"] for i in events(items, "CAPTURE")} == set(psps)
    tampered = dict(items[0], amount={"value": 1, "currency": "EUR"})
    assert (
        arvona_item_signature(tampered, sandbox.secret(A))
        != items[0]["additionalData"]["hmacSignature"]
    )


def test_unacknowledged_notifications_are_retried(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(A)
    h.fail_next(2)
    psp = arvona_authorised(sandbox)["pspReference"]
    # Each refused attempt is retried after a backoff in world time: 1 minute, then 2.
    sandbox.wait_attempts(A, h, 1)
    sandbox.advance(60)
    sandbox.wait_attempts(A, h, 2)
    sandbox.advance(120)
    got = h.wait_count(1)
    [item] = arvona_items(got, sandbox.secret(A))
    assert item["pspReference"] == psp
    [delivery] = sandbox.wait_attempts(A, h, 3)
    assert delivery["status"] == "delivered"
    assert [a["result"] for a in delivery["attempts"]] == ["http 500", "http 500", "delivered"]
