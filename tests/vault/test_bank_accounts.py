"""Bank account validation for ``us_bank_account`` and ``sepa_debit`` payment methods."""

from __future__ import annotations

import pytest

from kassa.core.errors import InvalidRequest
from kassa.vault import bank_accounts


def test_aba_checksum():
    assert bank_accounts.aba_valid("110000000")
    assert bank_accounts.aba_valid("021000021")
    assert not bank_accounts.aba_valid("110000001")
    assert not bank_accounts.aba_valid("11000000")


@pytest.mark.parametrize(
    ("routing", "account", "param"),
    [
        ("110000001", "000123456789", "us_bank_account[routing_number]"),
        ("110000000", "123", "us_bank_account[account_number]"),
        ("110000000", "1234567890123456789", "us_bank_account[account_number]"),
        # Digits to str.isdigit() but not to int(): a 400, never a 500.
        ("11000000\u00b2", "000123456789", "us_bank_account[routing_number]"),
        ("110000000", "1234\u00b2", "us_bank_account[account_number]"),
        ("110000000", "1234\u0663", "us_bank_account[account_number]"),
    ],
)
def test_bad_us_accounts_name_the_param(routing, account, param):
    with pytest.raises(InvalidRequest) as err:
        bank_accounts.check_us_account(routing, account)
    assert err.value.param == param
    assert account not in str(err.value)


def test_ibans():
    assert bank_accounts.normalize_iban("de89 3704 0044 0532 0130 00") == "DE89370400440532013000"
    assert bank_accounts.iban_codes("DE89370400440532013000") == ("37040044", None)
    assert bank_accounts.iban_codes("FR1420041010050500013M02606") == ("20041", "01005")
    for bad in (
        "DE89370400440532013001",
        "DE8937040044053201300",
        "XX00",
        "DE89!",
        "DE8937040044053201300\u00e9",
        "DE\u00b2937040044053201300",
    ):
        with pytest.raises(InvalidRequest) as err:
            bank_accounts.normalize_iban(bad)
        assert (err.value.code, err.value.param) == (
            "invalid_bank_account_iban",
            "sepa_debit[iban]",
        )
