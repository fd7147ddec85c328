"""One acquirer in outage: payments with a healthy route succeed through the other (at once,
or — for the few whose answer was lost before the breaker opened — once an inquiry shows the
acquirer never saw them), the breaker opens, and once the outage is over a half-open probe
closes it again."""

from __future__ import annotations

import asyncio

from tests.chaos.conftest import COOL_DOWN_S, FAILURE_THRESHOLD
from tests.chaos.support import breaker_state, charge_rows, intent_row, metric, pay

RETRIES = 2  # RetryConfig().max_retries: an unknown outcome is resent this often


async def test_outage_fails_over_and_the_breaker_recovers_through_a_probe(
    db, client, merchant, chaos_server, faults, records, injected, resolve
):
    m = merchant.merchant["id"]
    faults("acquirer_a", {"outage": True})  # every request reset without an answer
    payments = [pay(client, 2000 + i) for i in range(8)]

    assert await breaker_state(db, "acquirer_a") == "open"
    assert metric(chaos_server.url, "kassa_connector_breaker_state", connector="acquirer_a") == 1
    assert metric(chaos_server.url, "kassa_connector_breaker_state", connector="acquirer_b") == 0
    statuses = [status for _, status, _ in payments]
    assert set(statuses) <= {"succeeded", "processing"}
    lost = [pi for pi, status, _ in payments if status == "processing"]
    # A reset after sending may have been applied: those payments wait for an inquiry and
    # never cascade. Only the ones sent before the breaker opened can be among them...
    assert 1 <= len(lost) <= FAILURE_THRESHOLD
    # ...and after it opened acquirer_a saw no request at all.
    sent_to_a = injected("acquirer_a").get("reset", 0)
    assert FAILURE_THRESHOLD <= sent_to_a <= len(lost) * (1 + RETRIES)
    for pi, status, _ in payments:
        if status != "succeeded":
            continue
        charges = await charge_rows(db, m, pi)
        assert [c["connector"] for c in charges if c["status"] == "succeeded"] == ["acquirer_b"]
        for c in charges:
            if c["connector"] == "acquirer_a":
                assert (c["status"], c["outcome"]) == ("failed", "not_sent")
                assert records("acquirer_a", c["id"]) == []

    # The outage ends; after the cool-down one probe goes through and closes the breaker.
    faults("acquirer_a", {})
    await asyncio.sleep(COOL_DOWN_S)
    probe = None
    for i in range(6):
        pi, status, _ = pay(client, 3000 + i)
        assert status == "succeeded"
        if await breaker_state(db, "acquirer_a") == "closed":
            probe = pi
            break
    assert probe is not None
    probe_charges = await charge_rows(db, m, probe)
    assert [(c["connector"], c["status"]) for c in probe_charges] == [("acquirer_a", "succeeded")]
    assert metric(chaos_server.url, "kassa_connector_breaker_state", connector="acquirer_a") == 0
    for source, target in (("closed", "open"), ("open", "half_open"), ("half_open", "closed")):
        assert (
            metric(
                chaos_server.url,
                "kassa_connector_breaker_transitions_total",
                connector="acquirer_a",
                from_state=source,
                to_state=target,
            )
            >= 1
        )

    # The lost answers: acquirer_a never applied them, the inquiries say so, and each payment
    # is carried on at acquirer_b: every payment with a healthy route succeeds, once.
    await resolve()
    for pi in lost:
        intent = await intent_row(db, m, pi)
        assert (intent["status"], intent["amount_received"]) == ("succeeded", intent["amount"])
        charges = await charge_rows(db, m, pi)
        assert [(c["connector"], c["status"]) for c in charges] == [
            ("acquirer_a", "failed"),
            ("acquirer_b", "succeeded"),
        ]
        assert records("acquirer_a", charges[0]["id"]) == []
    for pi, _, _ in payments:
        intent = await intent_row(db, m, pi)
        captured = sum(
            r["captured"]
            for c in await charge_rows(db, m, pi)
            for r in records(c["connector"], c["id"])
        )
        assert captured == intent["amount_received"]
