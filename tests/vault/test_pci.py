"""PCI: a card number and its CVC, sent through a live API, appear neither in the server's log
nor in anything the database keeps (the vault's rows, idempotency records, events)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
import stripe

from kassa.core.keyring import keyring
from tests.factories import new_merchant, stripe_client

# A Luhn-valid Amex number not used elsewhere, and a 4-digit code: a distinctive pair to find.
NUMBER = "371449635398431"
CVC = "7391"


def _requests_logged(log_text: str) -> int:
    return log_text.count("/v1/payment_methods")


def _wait_for_log(server, offset: int, at_least: int) -> str:
    """The log written since ``offset``, once it holds ``at_least`` payment method requests
    (the request line is written as the response finishes, so it may trail the client)."""
    deadline = time.monotonic() + 10
    while True:
        text = server.log.read_bytes()[offset:].decode("utf-8", "replace")
        if _requests_logged(text) >= at_least or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def _no_cvc(text: str) -> bool:
    # bytea columns print as hex, which may contain any digit run: leave them out.
    without_hex = re.sub(r"\\*x[0-9a-f]+", "", text)
    return re.search(rf"(?<![0-9]){CVC}(?![0-9])", without_hex) is None


async def test_card_data_stays_out_of_logs_and_storage(api_server, db):
    merchant = await new_merchant(db)
    mid = merchant.merchant["id"]
    client = stripe_client(api_server.url, merchant.key("secret"))
    offset = api_server.log.stat().st_size

    card = {"number": NUMBER, "exp_month": 4, "exp_year": 2040, "cvc": CVC}

    def params(**change: Any) -> Any:
        return {"type": "card", "card": {**card, **change}}

    key = f"pci-{uuid.uuid4()}"
    pm = client.v1.payment_methods.create(params(), {"idempotency_key": key})
    client.v1.payment_methods.create(params(), {"idempotency_key": key})
    with pytest.raises(stripe.CardError):  # a rejected request must not echo it either
        client.v1.payment_methods.create(params(cvc=CVC[:3]), {"idempotency_key": f"{key}-2"})
    with pytest.raises(stripe.CardError):
        client.v1.payment_methods.create(params(exp_month=13))
    cus = client.v1.customers.create({"name": "Card holder"})
    client.v1.payment_methods.attach(pm.id, {"customer": cus.id})
    client.v1.payment_methods.update(pm.id, {"metadata": {"note": "fine"}})
    client.v1.payment_methods.retrieve(pm.id)

    log = _wait_for_log(api_server, offset, at_least=7)
    assert _requests_logged(log) >= 7, log  # the scan looked at the right requests
    assert NUMBER not in log
    assert NUMBER[6:-4] not in log  # not even the middle digits
    assert "[PAN redacted" not in log  # nothing even tried to log it
    assert _no_cvc(log)
    assert '"cvc"' not in log

    async with db.connection() as conn:
        dumps = [
            await conn.fetchval(
                "SELECT string_agg(t::text, E'\\n') FROM payment_methods t WHERE merchant_id = $1",
                mid,
            ),
            await conn.fetchval(
                "SELECT string_agg(t::text, E'\\n') FROM idempotency_keys t WHERE merchant_id = $1",
                mid,
            ),
            await conn.fetchval(
                "SELECT string_agg(t::text, E'\\n') FROM events t WHERE merchant_id = $1", mid
            ),
        ]
        row = await conn.fetchrow("SELECT * FROM payment_methods WHERE id = $1", pm.id)
    assert all(dumps), dumps
    for dump in dumps:
        assert NUMBER not in dump
        assert _no_cvc(dump)
    # The one place the number is, sealed: exactly the number, no CVC alongside it.
    sealed = keyring().open_record(pm.id, bytes(row["pan_key"]), bytes(row["pan"]))
    assert sealed == NUMBER.encode()
    assert row["cvc_check"] == "unchecked"
