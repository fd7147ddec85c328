"""Purslane (wallet): redirect approval, capture and refunds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .support import Hook, Sandbox, check_timestamped, unique

W = "wallet"


def auth(sb: Sandbox) -> tuple[str, str]:
    c = sb.creds(W)
    return c["client_id"], c["client_secret"]


def call(sb: Sandbox, method: str, path: str, body: Any = None, key: str | None = None
         ) -> httpx.Response:  # fmt: skip
    headers = {"purslane-request-id": key} if key else {}
    return sb.client(W).request(method, path, json=body, auth=auth(sb), headers=headers)


def order(sb: Sandbox, value: str = "42.50", currency: str = "EUR") -> dict[str, Any]:
    r = call(sb, "POST", "/v1/orders", {
        "intent": "CAPTURE", "reference_id": unique("w"),
        "amount": {"currency_code": currency, "value": value},
        "return_url": "https://shop.test/ok", "cancel_url": "https://shop.test/cancel",
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def approve(o: dict[str, Any], buyer: str = "buyer@purslane.test", action: str = "approve"
            ) -> httpx.Response:  # fmt: skip
    [link] = [x["href"] for x in o["links"] if x["rel"] == "approve"]
    page = httpx.get(link)
    assert "Approve" in page.text
    assert buyer in page.text
    return httpx.post(link, data={"action": action, "buyer": buyer})


def test_approve_capture_and_refund(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(W)
    o = order(sandbox)
    assert o["status"] == "CREATED"
    back = approve(o)
    assert back.status_code == 303
    target = urlsplit(back.headers["location"])
    assert target.path == "/ok"
    query = parse_qs(target.query)
    assert query["token"] == [o["id"]]
    assert query["PayerID"][0]
    captured = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture", key=unique("c"))
    assert captured.status_code == 201
    capture = captured.json()["capture"]
    assert (captured.json()["status"], capture["status"]) == ("COMPLETED", "COMPLETED")
    breakdown = capture["seller_receivable_breakdown"]
    # 3.49 % of 42.50 is 1.48 (half up), plus 0.35 fixed.
    assert breakdown["purslane_fee"] == {"currency_code": "EUR", "value": "1.83"}
    assert breakdown["net_amount"]["value"] == "40.67"
    for value in ("10.00", "30.00"):
        r = call(sandbox, "POST", f"/v1/captures/{capture['id']}/refund",
                 {"amount": {"currency_code": "EUR", "value": value}})  # fmt: skip
        assert (r.status_code, r.json()["status"]) == (201, "COMPLETED")
    over = call(sandbox, "POST", f"/v1/captures/{capture['id']}/refund",
                {"amount": {"currency_code": "EUR", "value": "2.51"}})  # fmt: skip
    assert over.json()["details"][0]["issue"] == "REFUND_AMOUNT_EXCEEDED"
    rest = call(sandbox, "POST", f"/v1/captures/{capture['id']}/refund")
    assert rest.json()["amount"]["value"] == "2.50"
    shown = call(sandbox, "GET", f"/v1/captures/{capture['id']}").json()
    assert (shown["status"], shown["refunded_amount"]["value"]) == ("REFUNDED", "42.50")
    got = h.wait_count(5)
    for post in got:
        check_timestamped(post.headers["purslane-signature"], post.body, sandbox.secret(W))
    assert [post.json()["event_type"] for post in got] == [
        "CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.REFUNDED",
        "PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REFUNDED",
    ]  # fmt: skip


def test_capture_is_idempotent_and_needs_approval(sandbox: Sandbox) -> None:
    o = order(sandbox, "1000", "JPY")
    early = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture")
    assert early.json()["details"][0]["issue"] == "ORDER_NOT_APPROVED"
    approve(o)
    key = unique("c")
    first = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture", key=key)
    again = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture", key=key)
    assert again.json() == first.json()
    assert first.json()["capture"]["amount"] == {"currency_code": "JPY", "value": "1000"}
    twice = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture", key=unique("c"))
    assert twice.json()["details"][0]["issue"] == "ORDER_ALREADY_CAPTURED"
    [rec] = sandbox.records(W, o["reference_id"])
    assert rec["status"] == "COMPLETED"


def test_declined_buyer_and_cancelled_approval(sandbox: Sandbox) -> None:
    o = order(sandbox)
    approve(o, buyer="declined@purslane.test")
    declined = call(sandbox, "POST", f"/v1/orders/{o['id']}/capture")
    assert (declined.status_code, declined.json()["details"][0]["issue"]) == (
        422, "INSTRUMENT_DECLINED",
    )  # fmt: skip
    cancelled = order(sandbox)
    back = approve(cancelled, action="cancel")
    assert urlsplit(back.headers["location"]).path == "/cancel"
    assert call(sandbox, "GET", f"/v1/orders/{cancelled['id']}").json()["status"] == "CANCELLED"
    assert sandbox.client(W).get(f"/v1/orders/{o['id']}").status_code == 401


def test_bad_amounts(sandbox: Sandbox) -> None:
    for amount in ({"currency_code": "JPY", "value": "10.5"},
                   {"currency_code": "CHF", "value": "1.00"},
                   {"currency_code": "EUR", "value": "0"}):  # fmt: skip
        r = call(sandbox, "POST", "/v1/orders", {
            "reference_id": "x", "amount": amount, "return_url": "https://a.test",
            "cancel_url": "https://a.test",
        })  # fmt: skip
        assert r.status_code in (400, 422)
