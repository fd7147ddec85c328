"""Every acquirer down: the API answers at once with a retryable ``processing_error`` (402
``card_error``, as Stripe does) and the intent back in ``requires_payment_method``; a payment
whose answer was lost is carried on once an acquirer is back."""

from __future__ import annotations

import json

import pytest
import stripe

from kassa.core.embedded_pg import free_port
from tests.chaos.conftest import FAILURE_THRESHOLD
from tests.chaos.support import breaker_state, charge_rows, intent_row, pay
from tests.conftest import start_api, stop_api
from tests.factories import stripe_client

RETRIES = 2


async def test_all_acquirers_in_outage(db, client, merchant, faults, records, resolve):
    m = merchant.merchant["id"]
    faults("acquirer_a", {"outage": True})
    faults("acquirer_b", {"outage": True})
    payments = [pay(client, 900 + i) for i in range(6)]
    assert await breaker_state(db, "acquirer_a") == "open"
    assert await breaker_state(db, "acquirer_b") == "open"
    # Before a breaker opened, an answer was lost at that acquirer (it may have charged, so
    # the payment waits for an inquiry); after both opened, nothing is sent anywhere.
    lost = [pi for pi, status, _ in payments if status == "processing"]
    assert 1 <= len(lost) <= 2
    refused = [(pi, status, code) for pi, status, code in payments if status != "processing"]
    assert refused
    assert refused == [(pi, "requires_payment_method", "processing_error") for pi, _, _ in refused]
    assert payments[-1] in refused
    for pi, _, _ in refused:
        intent = await intent_row(db, m, pi)
        assert intent["last_payment_error"]["code"] == "processing_error"
        assert intent["last_payment_error"]["type"] == "card_error"
        for c in await charge_rows(db, m, pi):
            assert (c["status"], c["outcome"]) == ("failed", "not_sent")
            assert records(c["connector"], c["id"]) == []

    faults("acquirer_a", {})
    faults("acquirer_b", {})
    await resolve()
    for pi in lost:
        # The inquiry finds the lost attempt never reached its acquirer: the payment is carried
        # on at the next candidate if one is left (now healthy), else it fails; either way
        # nobody is charged twice.
        await _assert_charged_once_or_failed(db, m, pi, records)
    # The customer's retry of a refused payment, once an acquirer is back, goes through.
    await _reset(db)
    retried = client.v1.payment_intents.confirm(refused[0][0], {"payment_method": "pm_card_visa"})
    assert (retried.status, retried.amount_received) == ("succeeded", retried.amount)


async def test_unreachable_acquirers_answer_at_once(
    database_url, log_dir, db, merchant, chaos_configuration
):
    """Nothing listens at either acquirer (connection refused): every payment fails fast with
    two unsent attempts, then, breakers open, without any connection attempt at all."""
    dead = tuple(
        c.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})
        for c in chaos_configuration.connectors
    )
    path = log_dir / "dead-connectors.json"
    path.write_text(
        json.dumps(
            chaos_configuration.model_copy(update={"connectors": dead}).model_dump(mode="json")
        )
    )
    server = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(path)})
    try:
        client = stripe_client(server.url, merchant.key("secret"))
        m = merchant.merchant["id"]
        for i in range(FAILURE_THRESHOLD + 2):
            with pytest.raises(stripe.CardError) as caught:
                client.v1.payment_intents.create(
                    {"amount": 700 + i, "currency": "usd", "payment_method": "pm_card_visa",
                     "confirm": True}
                )  # fmt: skip
            assert caught.value.http_status == 402
            assert caught.value.code == "processing_error"
            error = caught.value.error
            assert error is not None
            pi = error.payment_intent
            assert pi is not None
            assert pi.status == "requires_payment_method"
            charges = await charge_rows(db, m, pi.id)
            assert [(c["connector"], c["outcome"]) for c in charges] == [
                ("acquirer_a", "not_sent"),
                ("acquirer_b", "not_sent"),
            ]
        assert await breaker_state(db, "acquirer_a") == "open"
        assert await breaker_state(db, "acquirer_b") == "open"
        last = await charge_rows(db, m, pi.id)
        assert "circuit breaker open" in last[1]["routing"]["reason"]
    finally:
        stop_api(server)


async def _reset(db):
    from kassa.connectors import breaker

    for name in ("acquirer_a", "acquirer_b"):
        await breaker.reset_breaker(db, name)


async def _assert_charged_once_or_failed(db, m, pi, records) -> None:
    intent = await intent_row(db, m, pi)
    charges = await charge_rows(db, m, pi)
    charged = [c for c in charges if records(c["connector"], c["id"])]
    if intent["status"] == "succeeded":
        assert [c["status"] for c in charges][-1] == "succeeded"
        assert len(charged) == 1
        assert [r["captured"] for r in records(charged[0]["connector"], charged[0]["id"])] == [
            intent["amount"]
        ]
        assert intent["amount_received"] == intent["amount"]
    else:
        assert intent["status"] == "requires_payment_method"
        assert charged == []
        assert {c["status"] for c in charges} == {"failed"}
