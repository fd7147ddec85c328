"""Deferro (bnpl): approval redirect, capture and deferred settlement."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .support import Hook, Sandbox, check_timestamped, unique

N = "bnpl"
DAY = 86_400


def call(sb: Sandbox, method: str, path: str, body: Any = None, key: str | None = None
         ) -> httpx.Response:  # fmt: skip
    headers = {"authorization": f"Bearer {sb.creds(N)['api_key']}"}
    if key:
        headers["idempotency-key"] = key
    return sb.client(N).request(method, path, json=body, headers=headers)


def checkout(sb: Sandbox, email: str = "ada@example.test", amount: int = 20_000) -> dict[str, Any]:
    r = call(sb, "POST", "/v1/checkouts", {
        "amount": amount, "currency": "EUR", "reference": unique("n"),
        "return_url": "https://shop.test/ok", "cancel_url": "https://shop.test/no",
        "customer": {"email": email},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def decide(c: dict[str, Any], decision: str) -> dict[str, list[str]]:
    page = httpx.get(c["redirect_url"])
    assert "Approve plan" in page.text
    back = httpx.post(c["redirect_url"], data={"decision": decision})
    assert back.status_code == 303
    target = urlsplit(back.headers["location"])
    return {"path": [target.path], **parse_qs(target.query)}


def test_approval_capture_and_deferred_settlement(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(N)
    c = checkout(sandbox)
    back = decide(c, "approve")
    assert back == {"path": ["/ok"], "checkout_id": [c["id"]], "status": ["authorized"]}
    captured = call(sandbox, "POST", f"/v1/checkouts/{c['id']}/capture", key=unique("k"))
    assert captured.json()["status"] == "captured"
    refund = call(sandbox, "POST", f"/v1/checkouts/{c['id']}/refunds", {"amount": 5_000})
    assert refund.status_code == 201
    sandbox.advance(6 * DAY)
    assert call(sandbox, "GET", f"/v1/checkouts/{c['id']}").json()["settlement"] is None
    sandbox.advance(1 * DAY)
    settled = call(sandbox, "GET", f"/v1/checkouts/{c['id']}").json()
    assert settled["status"] == "settled"
    # Fee on the captured 200.00: 3.29 % = 6.58, plus 0.30; the refund is netted out.
    assert {k: settled["settlement"][k] for k in ("gross", "fee", "net")} == {
        "gross": 15_000, "fee": 688, "net": 14_312,
    }  # fmt: skip
    got = h.wait_count(4)
    for r in got:
        check_timestamped(r.headers["deferro-signature"], r.body, sandbox.secret(N))
    assert [r.json()["type"] for r in got] == [
        "checkout.authorized", "checkout.captured", "refund.succeeded", "settlement.paid",
    ]  # fmt: skip
    assert got[-1].json()["data"]["checkout"]["settlement"]["net"] == 14_312


def test_declines_and_cancels(sandbox: Sandbox) -> None:
    refused = checkout(sandbox, email="declined@deferro.test")
    assert decide(refused, "approve")["status"] == ["declined"]
    assert decide(checkout(sandbox), "decline")["path"] == ["/no"]
    c = checkout(sandbox)
    decide(c, "approve")
    assert call(sandbox, "POST", f"/v1/checkouts/{c['id']}/cancel").json()["status"] == "canceled"
    assert call(sandbox, "POST", f"/v1/checkouts/{c['id']}/capture").status_code == 409
    [rec] = sandbox.records(N, c["reference"])
    assert rec["status"] == "canceled"


def test_partial_capture_and_refund_limits(sandbox: Sandbox) -> None:
    c = checkout(sandbox, amount=10_000)
    decide(c, "approve")
    assert (
        call(sandbox, "POST", f"/v1/checkouts/{c['id']}/capture", {"amount": 20_000}).status_code
        == 400
    )
    call(sandbox, "POST", f"/v1/checkouts/{c['id']}/capture", {"amount": 6_000})
    assert (
        call(sandbox, "POST", f"/v1/checkouts/{c['id']}/refunds", {"amount": 6_001}).status_code
        == 400
    )
    assert call(sandbox, "POST", f"/v1/checkouts/{c['id']}/refunds").json()["amount"] == 6_000
    found = call(sandbox, "GET", "/v1/checkouts", None).json()
    assert found == {"data": []}
    by_ref = sandbox.client(N).get(
        "/v1/checkouts", params={"reference": c["reference"]},
        headers={"authorization": f"Bearer {sandbox.creds(N)['api_key']}"},
    ).json()  # fmt: skip
    assert [x["refunded_amount"] for x in by_ref["data"]] == [6_000]
