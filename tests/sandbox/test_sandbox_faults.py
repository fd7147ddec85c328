"""Fault injection through /admin/faults: errors, latency, hangs, outages, webhook mischief."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from .support import (
    A,
    B,
    Hook,
    Sandbox,
    arvona_authorised,
    arvona_headers,
    arvona_modify,
    arvona_pay,
    beltrane_call,
    beltrane_sale,
    unique,
)

BANK = "bank"


def faults(sb: Sandbox, service: str, config: dict[str, Any]) -> dict[str, Any]:
    return dict(sb.admin(service, "POST", "/admin/faults", config))


def inquiry(sb: Sandbox, timeout: float = 10.0) -> httpx.Response:
    return sb.client(A).get(
        "/v1/payments", params={"merchantReference": "probe"}, headers=arvona_headers(sb),
        timeout=timeout,
    )  # fmt: skip


def test_error_statuses_are_answered_without_applying(sandbox: Sandbox) -> None:
    faults(sandbox, A, {"script": ["500", "502", "503", "429"]})
    answers = []
    for _ in range(4):
        reference = unique("err")
        answers.append(arvona_pay(sandbox, reference=reference))
        assert sandbox.records(A, reference) == []
    assert [r.status_code for r in answers] == [500, 502, 503, 429]
    assert answers[0].json()["errorType"] == "internal"
    assert answers[1].headers["content-type"].startswith("text/html")
    assert "503" in answers[2].text
    assert answers[3].headers["retry-after"] == "1"
    assert answers[3].json()["errorType"] == "throttling"
    assert arvona_pay(sandbox).status_code == 200  # the script is used up
    state = sandbox.admin(A, "GET", "/admin/faults")
    assert state["injected"] == {"500": 1, "502": 1, "503": 1, "429": 1}
    assert state["script_remaining"] == []


def test_error_after_apply_creates_an_unknown_outcome_that_a_retry_resolves(
    sandbox: Sandbox,
) -> None:
    faults(sandbox, A, {"script": ["502"], "error_after_apply": True})
    reference, key = unique("apply"), unique("key")
    assert arvona_pay(sandbox, reference=reference, key=key).status_code == 502
    [applied] = sandbox.records(A, reference)
    retry = arvona_pay(sandbox, reference=reference, key=key)
    assert retry.status_code == 200
    assert retry.json()["pspReference"] == applied["id"]
    assert len(sandbox.records(A, reference)) == 1


def test_retry_after_apply_then_timeout_never_charges_twice(sandbox: Sandbox) -> None:
    faults(sandbox, A, {"script": ["timeout", "timeout"], "hang_s": 30})
    reference, key = unique("hang"), unique("key")
    with pytest.raises(httpx.ReadTimeout):
        arvona_pay(sandbox, amount=4_200, reference=reference, key=key, timeout=0.5)
    # The acquirer did authorise it, though the caller never heard.
    [record] = sandbox.records(A, reference)
    assert (record["status"], record["amount"]) == ("authorised", 4_200)
    psp = record["id"]
    cap_key = unique("cap")
    with pytest.raises(httpx.ReadTimeout):
        arvona_modify(sandbox, psp, "captures", 4_200, key=cap_key, reference=cap_key, timeout=0.5)
    retry = arvona_pay(sandbox, amount=4_200, reference=reference, key=key)
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["pspReference"] == psp
    cap_retry = arvona_modify(sandbox, psp, "captures", 4_200, key=cap_key, reference=cap_key)
    assert cap_retry.headers["idempotent-replayed"] == "true"
    sandbox.advance(1)
    [record] = sandbox.records(A, reference)
    assert record["captured"] == 4_200
    assert [m["kind"] for m in record["modifications"]] == ["capture"]
    assert [i["gross"] for i in record["ledger"]] == [4_200]


def test_beltrane_timeout_then_inquiry_and_retry(sandbox: Sandbox) -> None:
    faults(sandbox, B, {"script": ["timeout"], "hang_s": 30})
    custref, key = unique("hang"), unique("rid")
    with pytest.raises(httpx.ReadTimeout):
        beltrane_sale(sandbox, amt="77.00", custref=custref, key=key, timeout=0.5)
    # The natural next step after a timeout: ask.
    found = beltrane_call(sandbox, TRXTYPE="I", CUSTREF=custref)
    assert (found["ORIGRESULT"], found["TRANSSTATE"], found["CAPTUREDAMT"]) == ("0", "6", "77.00")
    retry = beltrane_sale(sandbox, amt="77.00", custref=custref, key=key)
    assert (retry["RESULT"], retry["DUPLICATE"], retry["PNREF"]) == ("0", "1", found["PNREF"])
    [record] = sandbox.records(B, custref)
    assert record["captured"] == 7_700


def test_same_seed_same_fault_sequence(sandbox: Sandbox) -> None:
    def sequence(seed: int) -> list[int]:
        faults(sandbox, A, {"seed": seed, "error_rates": {"500": 0.2, "503": 0.2, "429": 0.1}})
        return [inquiry(sandbox).status_code for _ in range(40)]

    first = sequence(42)
    assert sequence(42) == first
    assert {200, 500, 503, 429} <= set(first)
    assert sequence(43) != first


def test_latency_makes_impatient_callers_time_out(sandbox: Sandbox) -> None:
    faults(sandbox, A, {"latency": {"distribution": "fixed", "ms": 3000}})
    with pytest.raises(httpx.ReadTimeout):
        inquiry(sandbox, timeout=0.2)
    # Health and admin are never delayed.
    assert sandbox.client(A).get("/healthz", timeout=0.5).status_code == 200
    faults(sandbox, A, {"latency": {"distribution": "uniform", "min_ms": 1, "max_ms": 5}})
    assert inquiry(sandbox).status_code == 200
    faults(sandbox, A, {"latency": {"distribution": "exponential", "mean_ms": 2}})
    assert inquiry(sandbox).status_code == 200
    faults(sandbox, A, {"latency": {"distribution": "normal", "mean_ms": 3, "stddev_ms": 1}})
    assert inquiry(sandbox).status_code == 200


def test_outage_resets_connections_or_answers_503(sandbox: Sandbox) -> None:
    reference = unique("down")
    faults(sandbox, A, {"outage": True})
    with pytest.raises(httpx.TransportError):
        arvona_pay(sandbox, reference=reference)
    with httpx.Client(trust_env=False) as fresh, pytest.raises(httpx.TransportError):
        fresh.post(sandbox.url(A) + "/v1/payments", json={}, headers=arvona_headers(sandbox))
    assert sandbox.client(A).get("/healthz").status_code == 200
    faults(sandbox, A, {"outage": True, "outage_mode": "503"})
    assert arvona_pay(sandbox, reference=reference).status_code == 503
    assert sandbox.records(A, reference) == []
    sandbox.admin(A, "DELETE", "/admin/faults")
    assert arvona_pay(sandbox, reference=reference).status_code == 200


def test_faults_can_target_a_path_prefix(sandbox: Sandbox) -> None:
    faults(sandbox, A, {"path_prefix": "/v1/payments/", "error_rates": {"503": 1.0}})
    psp = arvona_authorised(sandbox)["pspReference"]
    assert arvona_modify(sandbox, psp, "captures", 100).status_code == 503
    assert beltrane_sale(sandbox)["RESULT"] == "0"  # other services are unaffected


@pytest.mark.parametrize(
    "config",
    [
        {"error_rates": {"404": 0.5}},
        {"error_rates": {"500": 0.7, "503": 0.4}},
        {"timeout_rate": 2},
        {"latency": {"distribution": "uniform", "min_ms": 5, "max_ms": 1}},
        {"latency": {"distribution": "zipf"}},
        {"script": ["explode"]},
        {"outage_mode": "sometimes"},
        {"surprise": True},
    ],
)
def test_bad_fault_configs_are_rejected(sandbox: Sandbox, config: dict[str, Any]) -> None:
    r = sandbox.client(A).post("/admin/faults", json=config)
    assert r.status_code == 400
    assert r.json()["error"]


def debit(sb: Sandbox, n: int = 1) -> list[str]:
    ids = []
    for _ in range(n):
        r = sb.client(BANK).post(
            "/v1/debits",
            json={"rail": "ach", "currency": "USD", "amount": 100, "reference": unique("dd"),
                  "account": {"routing_number": "110000000", "account_number": "000123456789"}},
            headers={"authorization": f"Bearer {sb.creds(BANK)['api_key']}"},
        )  # fmt: skip
        ids.append(r.json()["id"])
    return ids


def test_dropped_webhooks_are_retried(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(BANK)
    sandbox.admin(BANK, "POST", "/admin/settings", {"debit_processing_s": 0})
    faults(sandbox, BANK, {"webhook_drop_rate": 1.0})
    [debit_id] = debit(sandbox)
    sandbox.wait_attempts(BANK, h, 1)
    assert h.all() == []
    sandbox.admin(BANK, "DELETE", "/admin/faults")
    sandbox.advance(60)
    [got] = h.wait_count(1)
    assert got.json()["data"]["id"] == debit_id
    [delivery] = sandbox.wait_attempts(BANK, h, 2)
    assert [a["result"] for a in delivery["attempts"]] == ["dropped", "delivered"]


def test_duplicated_webhooks_arrive_twice(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(BANK)
    sandbox.admin(BANK, "POST", "/admin/settings", {"debit_processing_s": 0})
    faults(sandbox, BANK, {"webhook_duplicate_rate": 1.0})
    debit(sandbox)
    first, second = h.wait_count(2)
    assert first.json()["id"] == second.json()["id"]
    assert first.body == second.body


def test_delayed_and_reordered_webhooks(sandbox: Sandbox, hook: Callable[[str], Hook]) -> None:
    h = hook(BANK)
    sandbox.admin(BANK, "POST", "/admin/settings", {"debit_processing_s": 0})
    faults(sandbox, BANK, {"seed": 11, "webhook_delay_s": 600, "webhook_reorder_window_s": 300})
    created = debit(sandbox, 8)
    # Settled at once, but the notifications are held back.
    for debit_id in created:
        shown = (
            sandbox.client(BANK)
            .get(
                f"/v1/debits/{debit_id}",
                headers={"authorization": f"Bearer {sandbox.creds(BANK)['api_key']}"},
            )
            .json()
        )
        assert shown["status"] == "settled"
    assert sandbox.deliveries(BANK, h) == []
    sandbox.advance(900)
    got = h.wait_count(8)
    arrived = [r.json()["data"]["id"] for r in got]
    assert sorted(arrived) == sorted(created)
    assert arrived != created
