"""Recovery of a capture or cancel whose API process was killed (SIGKILL) during the PSP call:
the intent was left busy (``operation``), and the minutely sweep (``jobs.recover_operations``)
finishes it from what the acquirer holds under our reference, or releases it so the merchant
can try again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe

from kassa.connectors.configuration import ConnectorsFile, Timeouts, sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.jobs import recover_operations
from kassa.payments.service import operations
from kassa.payments.service.context import Payments
from tests.conftest import LiveServer, start_api, stop_api
from tests.factories import new_merchant


@pytest.fixture
def acquirer_b_only(sandbox: dict[str, Any], log_dir: Any) -> tuple[Any, ConnectorsFile]:
    """Beltrane alone: it decides captures and voids in its answer."""
    config = sandbox_configuration(sandbox)
    b = next(c for c in config.connectors if c.name == "acquirer_b")
    b = b.model_copy(update={"timeouts": Timeouts(modify=10.0, status=5.0)})
    config = config.model_copy(
        update={
            "connectors": (b,),
            "routing": config.routing.model_copy(update={"rules": (), "default": "acquirer_b"}),
        }
    )
    path = log_dir / "operation-recovery-connectors.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path, config


@pytest.fixture
def start(database_url: str, log_dir: Any, acquirer_b_only: Any) -> Iterator[Any]:
    started: list[LiveServer] = []

    def run() -> LiveServer:
        s = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(acquirer_b_only[0])})
        started.append(s)
        return s

    yield run
    for s in started:
        stop_api(s)


@pytest.fixture
def acquirer(sandbox: dict[str, Any]) -> Iterator[Any]:
    url = sandbox["services"]["acquirer_b"]["base_url"]

    class Acquirer:
        def faults(self, body: dict[str, Any]) -> None:
            httpx.post(f"{url}/admin/faults", json=body).raise_for_status()

        def injected(self) -> dict[str, int]:
            counts: dict[str, int] = httpx.get(f"{url}/admin/faults").json()["injected"]
            return counts

        def record(self, reference: str) -> dict[str, Any]:
            data: list[dict[str, Any]] = httpx.get(
                f"{url}/admin/transactions", params={"reference": reference}
            ).json()["data"]
            assert len(data) == 1
            return data[0]

    yield Acquirer()
    httpx.delete(f"{url}/admin/faults").raise_for_status()


def _client(server: LiveServer, merchant: Any) -> stripe.StripeClient:
    return stripe.StripeClient(
        merchant.key("secret"), base_addresses={"api": server.url}, max_network_retries=0
    )


def _authorized(client: stripe.StripeClient, amount: int) -> Any:
    pi = client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "capture_method": "manual",
            "confirm": True,
        }
    )
    assert pi.status == "requires_capture"
    return pi


async def _killed_during(
    server: LiveServer, acquirer: Any, fault: dict[str, Any], call: Callable[[], Any]
) -> None:
    """Run ``call`` against the API and SIGKILL the process once the acquirer has received
    its PSP request (the request the ``fault`` scripts)."""
    acquirer.faults({"path_prefix": "/", **fault})
    task = asyncio.create_task(asyncio.to_thread(call))
    for _ in range(400):
        if acquirer.injected():
            break
        await asyncio.sleep(0.025)
    else:
        raise AssertionError("the API never called the acquirer")
    server.proc.kill()
    server.proc.wait()
    with pytest.raises(stripe.APIConnectionError):
        await task


async def _intent(db: Any, merchant_id: str, intent_id: str) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow(
            "SELECT status, operation, operation_started_at, amount_received, "
            "amount_capturable, cancellation_reason, canceled_at, latest_charge "
            "FROM payment_intents WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            intent_id,
        )


async def _recover(db: Any, config: ConnectorsFile, merchant_id: str, intent_id: str) -> None:
    registry = ConnectorRegistry.from_configuration(config)
    payments = Payments(db, registry)
    try:
        # Within two minutes of its start an operation may still be running: left alone.
        fresh = await operations.recover_operation(payments, merchant_id, False, intent_id)
        assert fresh == "nothing to recover"
        assert await recover_operations(payments, age=timedelta(0)) >= 1
    finally:
        await registry.close()


async def test_a_capture_the_psp_applied_is_booked_by_the_sweep(
    db, start, acquirer_b_only, acquirer
):
    server = start()
    merchant = await new_merchant(db)
    m = merchant.merchant["id"]
    client = _client(server, merchant)
    pi = _authorized(client, 4321)
    # Beltrane captures at once and answers only after 5 s: the process is dead by then.
    await _killed_during(
        server,
        acquirer,
        {"script": ["timeout"], "hang_s": 5},
        lambda: client.v1.payment_intents.capture(
            pi.id,
            {"amount_to_capture": 3000, "metadata": {"order": "42"}},
            {"idempotency_key": f"capture-{pi.id}"},
        ),
    )
    acquirer.faults({})
    busy = await _intent(db, m, pi.id)
    assert (busy["status"], busy["operation"]) == ("requires_capture", "capture")
    assert busy["operation_started_at"] is not None
    assert acquirer.record(pi.latest_charge)["captured"] == 3000

    await _recover(db, acquirer_b_only[1], m, pi.id)

    intent = await _intent(db, m, pi.id)
    assert (intent["status"], intent["operation"], intent["operation_started_at"]) == (
        "succeeded",
        None,
        None,
    )
    assert (intent["amount_received"], intent["amount_capturable"]) == (3000, 0)
    async with db.connection() as conn:
        charge = await conn.fetchrow(
            "SELECT captured, amount_captured, fee, balance_transaction FROM charges "
            "WHERE merchant_id = $1 AND id = $2",
            m,
            pi.latest_charge,
        )
        txn = await conn.fetchrow(
            "SELECT amount, fee, net, type, source_id FROM balance_transactions "
            "WHERE merchant_id = $1 AND id = $2",
            m,
            charge["balance_transaction"],
        )
        events = await conn.fetch(
            "SELECT type FROM events WHERE merchant_id = $1 AND object_id = ANY($2)",
            m,
            [pi.id, pi.latest_charge],
        )
    assert (charge["captured"], charge["amount_captured"]) == (True, 3000)
    assert (txn["amount"], txn["fee"], txn["net"], txn["type"], txn["source_id"]) == (
        3000,
        charge["fee"],
        3000 - charge["fee"],
        "charge",
        pi.latest_charge,
    )
    assert {"charge.captured", "payment_intent.succeeded"} <= {e["type"] for e in events}
    # The acquirer's record and Kassa's agree, and the books balance.
    assert acquirer.record(pi.latest_charge)["captured"] == charge["amount_captured"]
    assert (await ledger.verify(db, m)).ok
    # A second sweep finds nothing more to do.
    registry = ConnectorRegistry.from_configuration(acquirer_b_only[1])
    try:
        again = await operations.recover_operation(
            Payments(db, registry), m, False, pi.id, age=timedelta(0)
        )
    finally:
        await registry.close()
    assert again == "nothing to recover"
    # The client's retry of the killed request replays what the sweep booked (not 409).
    # The sweep applied the whole request, metadata included.
    replayed = _client(start(), merchant).v1.payment_intents.capture(
        pi.id,
        {"amount_to_capture": 3000, "metadata": {"order": "42"}},
        {"idempotency_key": f"capture-{pi.id}"},
    )
    assert (replayed.status, replayed.amount_received) == ("succeeded", 3000)
    assert replayed.metadata.to_dict() == {"order": "42"}
    record = acquirer.record(pi.latest_charge)
    assert record["captured"] == 3000
    assert [x["kind"] for x in record["modifications"] if x["status"] == "succeeded"] == ["capture"]


async def test_a_capture_the_psp_never_applied_is_released_and_retried_once(
    db, start, acquirer_b_only, acquirer
):
    server = start()
    merchant = await new_merchant(db)
    m = merchant.merchant["id"]
    client = _client(server, merchant)
    pi = _authorized(client, 2500)
    key = f"capture-{pi.id}"
    # Beltrane drops the capture's connection after 1.5 s without applying it.
    await _killed_during(
        server,
        acquirer,
        {"script": ["reset"], "latency": {"ms": 1500}},
        lambda: client.v1.payment_intents.capture(pi.id, options={"idempotency_key": key}),
    )
    acquirer.faults({})
    assert (await _intent(db, m, pi.id))["operation"] == "capture"
    # Busy: every capture or cancel is refused until the sweep has run; the killed request's
    # key is still in flight.
    retry = _client(start(), merchant)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        retry.v1.payment_intents.capture(pi.id)
    assert refused.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.StripeError) as in_flight:
        retry.v1.payment_intents.capture(pi.id, options={"idempotency_key": key})
    assert in_flight.value.http_status == 409

    await _recover(db, acquirer_b_only[1], m, pi.id)

    intent = await _intent(db, m, pi.id)
    assert (intent["status"], intent["operation"], intent["amount_received"]) == (
        "requires_capture",
        None,
        0,
    )
    assert acquirer.record(pi.latest_charge)["captured"] == 0

    # Released with the operation: the retry with the same key runs, and captures once.
    captured = retry.v1.payment_intents.capture(pi.id, options={"idempotency_key": key})
    assert (captured.status, captured.amount_received) == ("succeeded", 2500)
    record = acquirer.record(pi.latest_charge)
    assert record["captured"] == 2500
    assert [x["kind"] for x in record["modifications"] if x["status"] == "succeeded"] == ["capture"]
    with pytest.raises(stripe.InvalidRequestError):
        retry.v1.payment_intents.capture(pi.id)
    assert (await _intent(db, m, pi.id))["amount_received"] == 2500
    assert (await ledger.verify(db, m)).ok


async def test_a_cancel_the_psp_voided_is_canceled_by_the_sweep(
    db, start, acquirer_b_only, acquirer
):
    server = start()
    merchant = await new_merchant(db)
    m = merchant.merchant["id"]
    client = _client(server, merchant)
    pi = _authorized(client, 1800)
    key = f"cancel-{pi.id}"
    # Beltrane voids at once and answers only after 5 s.
    await _killed_during(
        server,
        acquirer,
        {"script": ["timeout"], "hang_s": 5},
        lambda: client.v1.payment_intents.cancel(
            pi.id, {"cancellation_reason": "requested_by_customer"}, {"idempotency_key": key}
        ),
    )
    acquirer.faults({})
    assert (await _intent(db, m, pi.id))["operation"] == "cancel"
    assert acquirer.record(pi.latest_charge)["status"] == "cancelled"

    await _recover(db, acquirer_b_only[1], m, pi.id)

    intent = await _intent(db, m, pi.id)
    assert (intent["status"], intent["operation"], intent["amount_capturable"]) == (
        "canceled",
        None,
        0,
    )
    assert intent["canceled_at"] is not None
    assert intent["amount_received"] == 0
    async with db.connection() as conn:
        booked = await conn.fetchval(
            "SELECT count(*) FROM balance_transactions WHERE merchant_id = $1", m
        )
    assert booked == 0
    assert acquirer.record(pi.latest_charge)["captured"] == 0
    assert (await ledger.verify(db, m)).ok
    replayed = _client(start(), merchant).v1.payment_intents.cancel(
        pi.id, {"cancellation_reason": "requested_by_customer"}, {"idempotency_key": key}
    )
    assert (replayed.status, replayed.id) == ("canceled", pi.id)
    assert replayed.cancellation_reason == "requested_by_customer"
