"""Pure pieces of the sandbox: money conversion, card data, ids."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kassa.sandbox.cards import TEST_CARDS, bin_info, brand_from_range, countries, luhn_valid
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.money import AmountError, format_minor, minor_exponent, parse_major


@given(st.sampled_from(["EUR", "USD", "JPY", "KWD", "BHD", "CLP", "GBP"]),
       st.integers(min_value=0, max_value=10**14))  # fmt: skip
def test_minor_units_round_trip_through_decimal_strings(currency: str, amount: int) -> None:
    text = format_minor(amount, currency)
    assert parse_major(text, currency) == amount
    decimals = minor_exponent(currency)
    assert (text.split(".")[1] if "." in text else "") == (text[-decimals:] if decimals else "")


def test_exponents_and_formats() -> None:
    assert [minor_exponent(c) for c in ("JPY", "EUR", "KWD")] == [0, 2, 3]
    assert format_minor(-1050, "EUR") == "-10.50"
    assert format_minor(5, "KWD") == "0.005"
    assert format_minor(1050, "JPY") == "1050"


@pytest.mark.parametrize(
    ("text", "currency"), [("1.001", "EUR"), ("1.5", "JPY"), ("abc", "EUR"), ("", "EUR"),
                           ("1,00", "EUR"), ("-1", "EUR")],
)  # fmt: skip
def test_parse_rejects_what_it_cannot_represent(text: str, currency: str) -> None:
    with pytest.raises(AmountError):
        parse_major(text, currency)


def test_test_cards_are_luhn_valid_and_bins_cover_twenty_countries() -> None:
    assert all(luhn_valid(n) for n in TEST_CARDS)
    assert len(countries()) >= 20
    assert bin_info("4000002760003184").country == "DE"
    assert bin_info("3566002020360505").brand == "jcb"
    assert bin_info("6759649826438453").brand == "maestro"
    assert brand_from_range("2223003122003222") == "mastercard"


def test_ids_are_unique_and_deterministic() -> None:
    a, b = IdFactory("seed", 12), IdFactory("seed", 12)
    ids = [a.next() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert [b.next() for _ in range(20_000)] == ids
    assert IdFactory("other", 12).next() != ids[0]
