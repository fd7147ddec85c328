"""Cindral Bank (bank): ACH/SEPA debits with delayed returns, and payouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .support import Hook, Sandbox, check_timestamped, unique

BANK = "bank"
DAY = 86_400
ROUTING = "110000000"


def post(sb: Sandbox, kind: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {sb.creds(BANK)['api_key']}"}
    if key:
        headers["idempotency-key"] = key
    return sb.client(BANK).post(f"/v1/{kind}", json=body, headers=headers)


def get(sb: Sandbox, path: str, **params: str) -> dict[str, Any]:
    r = sb.client(BANK).get(
        path, params=params, headers={"authorization": f"Bearer {sb.creds(BANK)['api_key']}"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def ach(account: str) -> dict[str, Any]:
    return {"rail": "ach", "currency": "USD",
            "account": {"routing_number": ROUTING, "account_number": account}}  # fmt: skip


def sepa(iban: str) -> dict[str, Any]:
    return {"rail": "sepa", "currency": "EUR", "account": {"iban": iban}}


def debit(sb: Sandbox, target: dict[str, Any], amount: int = 2500) -> dict[str, Any]:
    r = post(sb, "debits", {**target, "amount": amount, "reference": unique("dd")})
    assert r.status_code == 201, r.text
    return dict(r.json())


def events_for(hook: Hook, sb: Sandbox, n: int) -> list[dict[str, Any]]:
    got = hook.wait_count(n)
    for r in got:
        check_timestamped(r.headers["cindral-signature"], r.body, sb.secret(BANK))
    return [r.json() for r in got]


@pytest.mark.parametrize(
    ("target", "status", "code", "reason"),
    [
        (ach("000123456789"), "settled", None, None),
        (ach("000222222227"), "returned", "R01", "insufficient_funds"),
        (ach("000111111113"), "returned", "R02", "account_closed"),
        (ach("000111111116"), "returned", "R03", "no_account"),
        (ach("000444444440"), "returned", "R04", "invalid_account_number"),
        (ach("987654321"), "settled", None, None),
        (sepa("DE89370400440532013000"), "settled", None, None),
        (sepa("DE62370400440532013001"), "returned", "AM04", "insufficient_funds"),
        (sepa("DE35370400440532013002"), "returned", "AC04", "account_closed"),
        (sepa("DE78370400440532013004"), "returned", "MD01", "no_mandate"),
    ],
)
def test_debits_stay_processing_then_settle_or_return(
    sandbox: Sandbox, hook: Callable[[str], Hook], target: dict[str, Any], status: str,
    code: str | None, reason: str | None,
) -> None:  # fmt: skip
    h = hook(BANK)
    created = debit(sandbox, target)
    assert created["status"] == "processing"
    sandbox.advance(2 * DAY)
    assert get(sandbox, f"/v1/debits/{created['id']}")["status"] == "processing"
    sandbox.advance(1 * DAY)
    done = get(sandbox, f"/v1/debits/{created['id']}")
    assert (done["status"], done["return_code"], done["return_reason"]) == (status, code, reason)
    [event] = events_for(h, sandbox, 1)
    assert event["type"] == f"debit.{status}"
    assert event["data"]["id"] == created["id"]
    assert event["data"]["amount"] == 2500


@pytest.mark.parametrize(
    ("target", "code"),
    [(ach("000333333335"), "R10"), (sepa("DE51370400440532013005"), "MD06")],
)
def test_late_returns_after_settlement(
    sandbox: Sandbox, hook: Callable[[str], Hook], target: dict[str, Any], code: str
) -> None:
    h = hook(BANK)
    created = debit(sandbox, target)
    sandbox.advance(3 * DAY)
    assert get(sandbox, f"/v1/debits/{created['id']}")["status"] == "settled"
    sandbox.advance(5 * DAY)
    done = get(sandbox, f"/v1/debits/{created['id']}")
    assert (done["status"], done["return_code"], done["returned_after_settlement"]) == (
        "returned", code, True,
    )  # fmt: skip
    assert [e["type"] for e in events_for(h, sandbox, 2)] == ["debit.settled", "debit.returned"]


def test_processing_delay_is_configurable(sandbox: Sandbox) -> None:
    sandbox.admin(BANK, "POST", "/admin/settings", {"debit_processing_s": 3600})
    created = debit(sandbox, ach("000123456789"))
    sandbox.advance(3600)
    assert get(sandbox, f"/v1/debits/{created['id']}")["status"] == "settled"


@pytest.mark.parametrize(
    ("target", "status", "failure"),
    [
        (ach("000123456789"), "paid", None),
        (ach("000111111113"), "failed", "account_closed"),
        (ach("000111111116"), "failed", "no_account"),
        (sepa("DE89370400440532013000"), "paid", None),
        (sepa("DE08370400440532013003"), "failed", "invalid_account_number"),
    ],
)
def test_payouts_arrive_or_fail_after_a_delay(
    sandbox: Sandbox, hook: Callable[[str], Hook], target: dict[str, Any], status: str,
    failure: str | None,
) -> None:  # fmt: skip
    h = hook(BANK)
    reference = unique("po")
    r = post(sandbox, "payouts", {**target, "amount": 10_000, "reference": reference})
    assert r.status_code == 201
    assert r.json()["status"] == "in_transit"
    sandbox.advance(DAY)
    [found] = get(sandbox, "/v1/payouts", reference=reference)["data"]
    assert (found["status"], found["failure_code"]) == (status, failure)
    [event] = events_for(h, sandbox, 1)
    assert (event["type"], event["data"]["id"]) == (f"payout.{status}", found["id"])


def test_validation_and_idempotency(sandbox: Sandbox) -> None:
    account = {"routing_number": "110000001", "account_number": "000123456789"}
    bad_routing = post(
        sandbox,
        "debits",
        {**ach("000123456789"), "amount": 1, "reference": "x", "account": account},
    )
    assert bad_routing.json()["error"]["param"] == "account.routing_number"
    bad_iban = post(sandbox, "debits", {**sepa("DE89370400440532013001"), "amount": 1,
                                        "reference": "x"})  # fmt: skip
    assert bad_iban.json()["error"]["code"] == "invalid_iban"
    wrong_currency = post(sandbox, "debits", {**ach("000123456789"), "currency": "EUR",
                                              "amount": 1, "reference": "x"})  # fmt: skip
    assert wrong_currency.status_code == 400
    unauthorized = sandbox.client(BANK).post("/v1/debits", json={})
    assert unauthorized.status_code == 401
    reference, key = unique("dd"), unique("key")
    body = {**ach("000123456789"), "amount": 700, "reference": reference}
    first = post(sandbox, "debits", body, key)
    again = post(sandbox, "debits", body, key)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(sandbox.records(BANK, reference)) == 1
    assert post(sandbox, "debits", {**body, "amount": 701}, key).status_code == 400
