"""Daily settlement files of both acquirers, with fees, net amounts and discrepancies."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl

from .support import (
    A,
    B,
    Hook,
    Sandbox,
    arvona_authorised,
    arvona_headers,
    arvona_items,
    arvona_modify,
    beltrane_call,
    beltrane_sale,
    check_timestamped,
    unique,
)


def arvona_report(sb: Sandbox, day: str) -> list[dict[str, str]]:
    r = sb.client(A).get("/v1/reports/settlement", params={"date": day}, headers=arvona_headers(sb))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


def beltrane_report(sb: Sandbox, day: str) -> list[dict[str, str]]:
    c = sb.creds(B)
    r = sb.client(B).post(
        "/reports",
        data={"USER": c["user"], "VENDOR": c["vendor"], "PARTNER": c["partner"],
              "PWD": c["password"], "REPORTDATE": day},
    )  # fmt: skip
    assert r.headers["content-type"].startswith("text/csv"), r.text
    return list(csv.DictReader(io.StringIO(r.text)))


def test_arvona_settles_t_plus_2_with_fees_and_net(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(A)
    visa = arvona_authorised(sandbox, amount=10_000, captureDelayHours=0)
    amex = arvona_authorised(sandbox, "378282246310005", cvc="1234", amount=10_000,
                             captureDelayHours=0)  # fmt: skip
    yen = arvona_authorised(sandbox, amount=1_000, currency="JPY", captureDelayHours=0)
    instant = arvona_authorised(sandbox, "4000000000000077", amount=5_000, captureDelayHours=0)
    refund = arvona_modify(sandbox, visa["pspReference"], "refunds", 2_500).json()["pspReference"]
    today = date.fromisoformat(sandbox.advance_past_close(2)) - timedelta(days=2)
    # The "bypass pending" card settles the same day; everything else two days later.
    same_day = {r["Psp Reference"]: r for r in arvona_report(sandbox, today.isoformat())}
    row = same_day[instant["pspReference"]]
    assert (row["Type"], row["Gross"], row["Fee"], row["Net"]) == ("Settled", "5000", "70", "4930")
    assert visa["pspReference"] not in same_day
    later = arvona_report(sandbox, (today + timedelta(days=2)).isoformat())
    rows = {(r["Psp Reference"], r["Type"]): r for r in later}

    def money(psp: str, kind: str) -> tuple[str, str, str, str]:
        r = rows[(psp, kind)]
        return r["Currency"], r["Gross"], r["Fee"], r["Net"]

    # 1.20 % + 0.10 for Visa, 2.90 % + 0.10 for Amex, 1.20 % + 15 yen; refunds cost nothing.
    assert money(visa["pspReference"], "Settled") == ("EUR", "10000", "130", "9870")
    assert money(amex["pspReference"], "Settled") == ("EUR", "10000", "300", "9700")
    assert money(yen["pspReference"], "Settled") == ("JPY", "1000", "27", "973")
    assert money(visa["pspReference"], "Refunded") == ("EUR", "-2500", "0", "-2500")
    assert rows[(visa["pspReference"], "Refunded")]["Modification Reference"] == refund
    assert (
        rows[(visa["pspReference"], "Settled")]["Merchant Reference"] == visa["merchantReference"]
    )
    items = arvona_items(
        h.wait(lambda rs: len(events(arvona_items(rs, sandbox.secret(A)))) >= 3),
        sandbox.secret(A),
    )  # fmt: skip
    urls = [i["reason"] for i in events(items)]
    assert any(u.endswith(f"date={today.isoformat()}") for u in urls)
    fetched = sandbox.client(A).get(urls[-1], headers=arvona_headers(sandbox))
    assert fetched.status_code == 200
    listed = sandbox.client(A).get("/v1/reports", headers=arvona_headers(sandbox)).json()["data"]
    assert today.isoformat() in {r["date"] for r in listed}
    assert (
        sandbox.client(A)
        .get(
            "/v1/reports/settlement", params={"date": "2999-01-01"}, headers=arvona_headers(sandbox)
        )
        .status_code
        == 404
    )


def events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in items if i["eventCode"] == "REPORT_AVAILABLE"]


def test_beltrane_settles_t_plus_1_in_decimal_amounts(
    sandbox: Sandbox, hook: Callable[[str], Hook]
) -> None:
    h = hook(B)
    kwd = beltrane_sale(sandbox, amt="1.500", currency="KWD")["PNREF"]
    credit = beltrane_call(sandbox, TRXTYPE="C", ORIGID=kwd, AMT="0.500")["PNREF"]
    yen = beltrane_sale(sandbox, amt="1000", currency="JPY")["PNREF"]
    auth = beltrane_sale(sandbox, trx="A", amt="20.00", currency="USD")["PNREF"]
    capture = beltrane_call(sandbox, TRXTYPE="D", ORIGID=auth)["PNREF"]
    day = sandbox.advance_past_close(1)
    rows = {r["PNREF"]: r for r in beltrane_report(sandbox, day)}

    def money(pnref: str) -> tuple[str, str, str, str, str]:
        r = rows[pnref]
        return r["TransType"], r["Currency"], r["Amount"], r["Fee"], r["NetAmount"]

    # 2.40 % + 0.080 KWD / 30 JPY / 0.25 USD per sale or capture; a credit costs its fixed fee.
    assert money(kwd) == ("Sale", "KWD", "1.500", "0.116", "1.384")
    assert money(credit) == ("Credit", "KWD", "-0.500", "0.080", "-0.580")
    assert money(yen) == ("Sale", "JPY", "1000", "54", "946")
    assert money(capture) == ("Delayed Capture", "USD", "20.00", "0.73", "19.27")
    assert (rows[credit]["OrigPNREF"], rows[kwd]["OrigPNREF"]) == (kwd, "")
    assert rows[capture]["OrigPNREF"] == auth
    assert rows[kwd]["SettlementDate"] == day
    got = h.wait(lambda rs: any(r.form().get("REPORTDATE") == day for r in rs))
    for r in got:
        check_timestamped(r.headers["x-beltrane-signature"], r.body, sandbox.secret(B))
    reports = [r.form() for r in got if r.form()["EVENT"] == "SETTLEMENT_REPORT"]
    assert day in {r["REPORTDATE"] for r in reports}
    c = sandbox.creds(B)
    missing = sandbox.client(B).post(
        "/reports", data={"USER": c["user"], "PARTNER": c["partner"], "PWD": c["password"],
                          "REPORTDATE": "2999-01-01"},
    )  # fmt: skip
    assert dict(parse_qsl(missing.text))["RESULT"] == "19"


def test_injected_discrepancies(sandbox: Sandbox) -> None:
    before = {r["batch"] for r in sandbox.admin(A, "GET", "/admin/settlement/reports")["data"]}
    sandbox.admin(A, "POST", "/admin/settlement/discrepancies",
                  {"missing_row": 1, "amount_mismatch": 1, "unknown_row": 1})  # fmt: skip
    for _ in range(4):
        arvona_authorised(sandbox, "4000000000000077", amount=3_000, captureDelayHours=0)
    sandbox.advance_past_close(0)
    state = sandbox.admin(A, "GET", "/admin/settlement/reports")
    assert state["pending_discrepancies"] == {"missing_row": 0, "amount_mismatch": 0,
                                              "unknown_row": 0}  # fmt: skip
    new = [r for r in state["data"] if r["batch"] not in before]
    injected = {i["kind"]: (r["date"], i) for r in new for i in r["injected"]}
    assert set(injected) == {"missing_row", "amount_mismatch", "unknown_row"}
    truth = {
        item["item_id"]: item
        for p in sandbox.admin(A, "GET", "/admin/transactions?limit=100000")["data"]
        for item in p["ledger"]
    }
    day, missing = injected["missing_row"]
    assert missing["item_id"] not in {
        r["Modification Reference"] for r in arvona_report(sandbox, day)
    }
    assert truth[missing["item_id"]]["kind"] == "capture"
    day, mismatch = injected["amount_mismatch"]
    [row] = [r for r in arvona_report(sandbox, day)
             if r["Modification Reference"] == mismatch["item_id"]]  # fmt: skip
    real = truth[mismatch["item_id"]]["gross"]
    assert int(row["Gross"]) == real + mismatch["delta"] != real
    assert int(row["Net"]) == int(row["Gross"]) - int(row["Fee"])
    day, unknown = injected["unknown_row"]
    [ghost] = [r for r in arvona_report(sandbox, day)
               if r["Modification Reference"] == unknown["item_id"]]  # fmt: skip
    assert unknown["item_id"] not in truth
    looked_up = sandbox.client(A).get(
        f"/v1/payments/{ghost['Psp Reference']}", headers=arvona_headers(sandbox)
    )
    assert looked_up.status_code == 422
    bad = sandbox.client(A).post("/admin/settlement/discrepancies", json={"wrong_row": 1})
    assert bad.status_code == 400


def test_daily_reports_exist_even_for_quiet_days(sandbox: Sandbox) -> None:
    reference = unique("quiet")
    assert sandbox.records(A, reference) == []
    day = sandbox.advance_past_close(0)
    assert arvona_report(sandbox, day) is not None
    assert beltrane_report(sandbox, day) is not None
