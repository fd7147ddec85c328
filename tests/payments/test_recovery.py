"""Recovery of attempts whose outcome was never recorded: an API process killed during the PSP
call is recovered by the sweep after the restart, and an outcome no inquiry can learn ends in
the operators' review list instead of being asked about forever."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
from typer.testing import CliRunner

from kassa.cli import app as cli
from kassa.connectors.configuration import ConnectorsFile, Timeouts, sandbox_configuration
from kassa.connectors.registry import ConnectorRegistry
from kassa.ledger import service as ledger
from kassa.payments.jobs import recover_abandoned
from kassa.payments.service import attempts
from kassa.payments.service.context import Payments
from tests.conftest import LiveServer, start_api, stop_api
from tests.factories import new_merchant


@pytest.fixture
def acquirer_a_only(sandbox: dict[str, Any], log_dir: Any) -> tuple[Any, ConnectorsFile]:
    config = sandbox_configuration(sandbox)
    a = next(c for c in config.connectors if c.name == "acquirer_a")
    a = a.model_copy(update={"timeouts": Timeouts(authorize=1.0, status=5.0)})
    config = config.model_copy(
        update={
            "connectors": (a,),
            "routing": config.routing.model_copy(update={"rules": (), "default": "acquirer_a"}),
        }
    )
    path = log_dir / "recovery-connectors.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    return path, config


@pytest.fixture
def server(database_url: str, log_dir: Any, acquirer_a_only: Any) -> Iterator[LiveServer]:
    s = start_api(database_url, log_dir, {"KASSA_CONNECTORS_FILE": str(acquirer_a_only[0])})
    yield s
    stop_api(s)


@pytest.fixture
def acquirer(sandbox: dict[str, Any]) -> Iterator[Any]:
    url = sandbox["services"]["acquirer_a"]["base_url"]

    class Acquirer:
        def faults(self, body: dict[str, Any]) -> None:
            httpx.post(f"{url}/admin/faults", json=body).raise_for_status()

        def records(self, reference: str) -> list[dict[str, Any]]:
            data: list[dict[str, Any]] = httpx.get(
                f"{url}/admin/transactions", params={"reference": reference}
            ).json()["data"]
            return data

    yield Acquirer()
    httpx.delete(f"{url}/admin/faults").raise_for_status()


async def _pending_charge(db: Any, merchant_id: str) -> Any:
    """Wait until the API has committed the attempt (the saga's first transaction)."""
    for _ in range(200):
        async with db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, intent_id, status, outcome FROM charges WHERE merchant_id = $1",
                merchant_id,
            )
        if row is not None:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("the API never committed the attempt")


async def _killed_mid_call(db: Any, server: LiveServer, amount: int) -> tuple[Any, Any]:
    """Confirm a payment and kill the API process (SIGKILL) while the PSP call is in flight."""
    merchant = await new_merchant(db)
    client = stripe.StripeClient(
        merchant.key("secret"), base_addresses={"api": server.url}, max_network_retries=0
    )
    call = asyncio.create_task(
        asyncio.to_thread(
            client.v1.payment_intents.create,
            {
                "amount": amount,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": True,
            },
        )
    )
    charge = await _pending_charge(db, merchant.merchant["id"])
    assert (charge["status"], charge["outcome"]) == ("pending", "pending")
    server.proc.kill()
    server.proc.wait()
    with pytest.raises(stripe.APIConnectionError):
        await call
    return merchant, charge


async def _recover(db: Any, config: ConnectorsFile) -> None:
    registry = ConnectorRegistry.from_configuration(config)
    try:
        await recover_abandoned(Payments(db, registry), age=timedelta(0))
    finally:
        await registry.close()


async def _intent(db: Any, merchant_id: str, intent_id: str) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow(
            "SELECT status, amount_received, last_payment_error FROM payment_intents "
            "WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            intent_id,
        )


async def _charge(db: Any, merchant_id: str, charge_id: str) -> Any:
    async with db.connection() as conn:
        return await conn.fetchrow(
            "SELECT status, outcome, amount_captured, review_since, inquiries FROM charges "
            "WHERE merchant_id = $1 AND id = $2",
            merchant_id,
            charge_id,
        )


async def test_killed_after_the_psp_charged_is_booked_after_restart(
    db, server, acquirer_a_only, acquirer
):
    # The acquirer takes 1.5 s and then charges, whether or not anyone still listens.
    acquirer.faults({"path_prefix": "/v1/payments", "latency": {"ms": 1500}})
    merchant, charge = await _killed_mid_call(db, server, 4321)
    m = merchant.merchant["id"]
    for _ in range(100):
        if acquirer.records(charge["id"]):
            break
        await asyncio.sleep(0.05)
    acquirer.faults({})
    assert (await _intent(db, m, charge["intent_id"]))["status"] == "processing"

    await _recover(db, acquirer_a_only[1])

    intent = await _intent(db, m, charge["intent_id"])
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 4321)
    held = acquirer.records(charge["id"])
    assert [r["captured"] for r in held] == [4321]
    assert (await _charge(db, m, charge["id"]))["amount_captured"] == 4321
    assert (await ledger.verify(db, m)).ok


async def test_killed_before_the_psp_saw_it_fails_safely_after_restart(
    db, server, acquirer_a_only, acquirer
):
    # The acquirer drops the connection after 1.5 s without doing anything.
    acquirer.faults({"path_prefix": "/v1/payments", "latency": {"ms": 1500}, "script": ["reset"]})
    merchant, charge = await _killed_mid_call(db, server, 1234)
    m = merchant.merchant["id"]
    await asyncio.sleep(1.6)  # let the acquirer drop it
    acquirer.faults({})

    await _recover(db, acquirer_a_only[1])

    intent = await _intent(db, m, charge["intent_id"])
    assert (intent["status"], intent["amount_received"]) == ("requires_payment_method", 0)
    assert intent["last_payment_error"]["code"] == "processing_error"
    assert acquirer.records(charge["id"]) == []
    assert (await _charge(db, m, charge["id"]))["outcome"] == "not_sent"


async def test_an_outcome_no_inquiry_learns_goes_to_review(
    db, server, acquirer_a_only, acquirer, database_url
):
    merchant = await new_merchant(db)
    m = merchant.merchant["id"]
    client = stripe.StripeClient(merchant.key("secret"), base_addresses={"api": server.url})
    # Applied, then answered after the 1 s timeout: the answer is lost.
    acquirer.faults({"path_prefix": "/v1/payments", "script": ["timeout"], "hang_s": 2})
    pi = client.v1.payment_intents.create(
        {"amount": 5555, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert pi.status == "processing"
    charge_id = pi.latest_charge
    assert isinstance(charge_id, str)
    # The sweep leaves it to its scheduled inquiries (the backoff holds).
    await _recover(db, acquirer_a_only[1])
    assert (await _charge(db, m, charge_id))["inquiries"] == 0

    # Every inquiry on the schedule meets an outage.
    acquirer.faults({"outage": True, "outage_mode": "503"})
    registry = ConnectorRegistry.from_configuration(acquirer_a_only[1])
    payments = Payments(db, registry)
    try:
        for n in range(1, len(attempts.INQUIRY_BACKOFF) + 1):
            assert (await _charge(db, m, charge_id))["review_since"] is None
            assert await attempts.resolve_charge(payments, m, False, charge_id) == "unknown"
            assert (await _charge(db, m, charge_id))["inquiries"] == n
        flagged = await _charge(db, m, charge_id)
        assert flagged["review_since"] is not None
        assert flagged["status"] == "pending"
        async with db.connection() as conn:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
                "'payments:resolve_charge' AND status = 'todo' AND args->>'charge_id' = $1 "
                "AND queueing_lock = $2",
                charge_id,
                f"resolve:{charge_id}:{len(attempts.INQUIRY_BACKOFF)}",
            )
        assert waiting == 0  # no inquiry is scheduled after the last one

        # The CLI runs its own event loop: off this one.
        listed = await asyncio.to_thread(
            CliRunner().invoke, cli, ["payments", "unresolved", "--json"]
        )
        assert listed.exit_code == 0, listed.output
        assert charge_id in {r["id"] for r in json.loads(listed.output)}

        # The PSP answers again; the operator asks once more and the saga finishes.
        acquirer.faults({})
        assert await attempts.resolve_charge(payments, m, False, charge_id) == "captured"
    finally:
        await registry.close()
    intent = await _intent(db, m, pi.id)
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 5555)
    assert [r["captured"] for r in acquirer.records(charge_id)] == [5555]
    assert charge_id not in {r["id"] for r in await attempts.charges_in_review(db, 1000)}
    assert (await ledger.verify(db, m)).ok


async def test_an_abandoned_bank_debit_is_recovered_on_its_own_path(
    db: Any, database_url: str, log_dir: Any, sandbox: dict[str, Any], sandbox_manifest: Any
) -> None:
    """A process killed while the bank applied a debit: the sweep resolves the attempt as a
    bank debit (the bank holds it under our reference: it is on the rail), not as a card."""
    bank_url = sandbox["services"]["bank"]["base_url"]
    server = start_api(database_url, log_dir, {"KASSA_SANDBOX_MANIFEST": str(sandbox_manifest)})
    merchant = await new_merchant(db)
    client = stripe.StripeClient(
        merchant.key("secret"), base_addresses={"api": server.url}, max_network_retries=0
    )
    httpx.post(
        f"{bank_url}/admin/faults",
        json={"path_prefix": "/v1/debits", "timeout_rate": 1.0, "hang_s": 20},
    ).raise_for_status()
    try:
        pm = client.v1.payment_methods.create(
            {
                "type": "us_bank_account",
                "us_bank_account": {
                    "routing_number": "110000000",
                    "account_number": "000123456789",
                    "account_holder_type": "individual",
                },
                "billing_details": {"name": "Ada Lovelace"},
            }
        )
        call = asyncio.create_task(
            asyncio.to_thread(
                client.v1.payment_intents.create,
                {  # type: ignore[typeddict-unknown-key]  # the SDK's stubs lack it here
                    "amount": 2500,
                    "currency": "usd",
                    "payment_method_types": ["us_bank_account"],
                    "payment_method": pm.id,
                    "confirm": True,
                },
            )
        )
        charge = await _pending_charge(db, merchant.merchant["id"])
        await asyncio.sleep(0.5)  # the debit request is at the bank, which applies it
        server.proc.kill()
        server.proc.wait()
        with pytest.raises(stripe.APIConnectionError):
            await call
    finally:
        httpx.delete(f"{bank_url}/admin/faults").raise_for_status()
        stop_api(server)
    registry = ConnectorRegistry.from_configuration(sandbox_configuration(sandbox))
    try:
        assert await recover_abandoned(Payments(db, registry), age=timedelta(0)) >= 1
    finally:
        await registry.close()
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT c.status, c.outcome, i.status AS intent_status FROM charges c "
            "JOIN payment_intents i ON i.merchant_id = c.merchant_id AND i.id = c.intent_id "
            "WHERE c.merchant_id = $1 AND c.id = $2",
            merchant.merchant["id"],
            charge["id"],
        )
    assert (row["status"], row["outcome"], row["intent_status"]) == (
        "pending",
        "processing",
        "processing",
    )
    debits = httpx.get(f"{bank_url}/admin/transactions", params={"reference": charge["id"]}).json()[
        "data"
    ]
    assert len(debits) == 1  # resent under the same reference: still one debit
