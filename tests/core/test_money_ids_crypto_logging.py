from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest

from kassa.core import clock
from kassa.core.crypto import Kek, Keyring, generate_key
from kassa.core.errors import InvalidRequest
from kassa.core.ids import new_id
from kassa.core.logging import configure, get_logger, redact_pans
from kassa.core.money import Money, currency, is_currency


@pytest.mark.parametrize(
    ("code", "exponent"),
    [("usd", 2), ("EUR", 2), ("jpy", 0), ("krw", 0), ("kwd", 3), ("bhd", 3), ("jod", 3)],
)
def test_currency_exponents_come_from_cldr(code, exponent):
    assert currency(code).exponent == exponent


def test_money_converts_exactly():
    assert Money(1000, currency("jpy")).to_decimal() == Decimal("1000")
    assert Money(1234, currency("kwd")).to_decimal() == Decimal("1.234")
    assert Money.from_decimal("10.50", currency("usd")).amount == 1050
    with pytest.raises(ValueError, match="more decimals"):
        Money.from_decimal("1.5", currency("jpy"))
    assert is_currency("chf")
    assert not is_currency("xyz")
    with pytest.raises(InvalidRequest) as err:
        currency("xyz")
    assert err.value.param == "currency"


def test_ids_sort_by_creation_time():
    ids = [new_id("cus") for _ in range(200)]
    clock.advance(2)
    try:
        later = new_id("cus")
    finally:
        clock.reset()
    assert all(i.startswith("cus_") and len(i) == 26 for i in ids)
    assert len(set(ids)) == 200
    assert max(ids) < later


def test_envelope_encryption_round_trips_and_binds_the_record_id():
    kek = Kek.from_base64("k1", generate_key())
    ring = Keyring(kek, {"k1": kek}, b"i" * 32)
    wrapped, sealed = ring.seal_record("cus_1", b"secret")
    assert b"secret" not in sealed
    assert ring.open_record("cus_1", wrapped, sealed) == b"secret"
    with pytest.raises(Exception):  # noqa: B017,PT011 - cryptography's InvalidTag
        ring.open_record("cus_2", wrapped, sealed)
    assert ring.blind_index("a@b.c") == ring.blind_index("a@b.c") != ring.blind_index("x@b.c")


def test_card_numbers_are_redacted_from_logs():
    assert redact_pans("card 4242424242424242 ok") == "card [PAN redacted …4242] ok"
    assert redact_pans("4242 4242 4242 4242") == "[PAN redacted …4242]"
    assert redact_pans("order 1234567890123") == "order 1234567890123"  # not Luhn-valid
    stream = io.StringIO()
    configure("info", json=True)
    logging.getLogger().handlers[0].setStream(stream)
    get_logger("t").info("charge", number="4000000000000002", nested={"pan": "5555555555554444"})
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert "4000000000000002" not in stream.getvalue()
    assert "5555555555554444" not in stream.getvalue()
    assert line["number"] == "[PAN redacted …0002]"
