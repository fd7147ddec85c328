"""``decline_rate``: an acquirer degraded to a share of issuer declines. The declines are
ordinary refusals (Arvona ``Refused`` / reason 2, Beltrane ``RESULT=12`` / ``HOSTCODE=05``),
recorded like any other, drawn from the seeded sequence, and leave other outcomes alone."""

from __future__ import annotations

from typing import Any

from .support import A, B, Sandbox, arvona_pay, beltrane_sale, unique


def _arvona_results(sb: Sandbox, n: int, number: str = "4242424242424242") -> list[Any]:
    out = []
    for _ in range(n):
        r = arvona_pay(sb, number, reference=unique("dr"))
        assert r.status_code == 200, r.text
        body = r.json()
        out.append((body["resultCode"], body.get("refusalReasonCode")))
    return out


def test_half_the_approvals_become_generic_declines(sandbox: Sandbox) -> None:
    state = sandbox.admin(A, "POST", "/admin/faults", {"decline_rate": 0.5, "seed": 11})
    assert state["config"]["decline_rate"] == 0.5
    results = _arvona_results(sandbox, 200)
    refused = [r for r in results if r[0] == "Refused"]
    assert {r for r in results if r[0] != "Refused"} == {("Authorised", None)}
    assert {r[1] for r in refused} == {"2"}  # generic decline, as a real issuer's refusal
    assert 70 <= len(refused) <= 130  # binomial(200, 0.5), seeded: far inside
    assert sandbox.admin(A, "GET", "/admin/faults")["injected"] == {"decline": len(refused)}

    # The same seed replays the same sequence.
    sandbox.admin(A, "POST", "/admin/faults", {"decline_rate": 0.5, "seed": 11})
    assert _arvona_results(sandbox, 200) == results


def test_declines_are_recorded_and_spare_other_outcomes(sandbox: Sandbox) -> None:
    sandbox.admin(B, "POST", "/admin/faults", {"decline_rate": 1.0})
    reference = unique("dr")
    answer = beltrane_sale(sandbox, custref=reference)
    assert (answer["RESULT"], answer.get("HOSTCODE")) == ("12", "05")
    records = sandbox.records(B, reference)
    assert [r["status"] for r in records] == ["refused"]
    # A card the issuer refuses anyway keeps its own reason; a 3-D Secure card still asks.
    assert beltrane_sale(sandbox, "4000000000009995")["RESULT"] == "50"
    assert beltrane_sale(sandbox, "4000002760003184")["RESULT"] == "160"
    sandbox.admin(B, "DELETE", "/admin/faults")
    assert beltrane_sale(sandbox)["RESULT"] == "0"


def test_a_bad_decline_rate_is_refused(sandbox: Sandbox) -> None:
    for bad in (1.5, -0.1, "half", True):
        r = sandbox.client(A).post("/admin/faults", json={"decline_rate": bad})
        assert r.status_code == 400
        assert "decline_rate" in r.json()["error"]
