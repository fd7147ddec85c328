"""PCI: after the whole suite, no card number used anywhere in it and no CVC appears in a dump of
the database or in any log the API servers wrote. (The sandbox is the outside world — an
acquirer must see the number — so its own log is not Kassa's.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kassa.core.logging import _luhn_ok

TESTS = Path(__file__).resolve().parents[1]
# Distinctive CVCs sent by the suite (short codes like "123" are checked by shape below).
KNOWN_CVCS = ("7391",)
# The sandbox bank's test accounts (tests/payments/test_bank_debits.py): sealed like card
# numbers, so never in plain text either.
BANK_ACCOUNTS = (
    "000123456789",
    "000222222227",
    "000333333335",
    "DE89370400440532013000",
    "DE62370400440532013001",
)


def _card_numbers_used_in_tests() -> set[str]:
    """Every Luhn-valid 13–19 digit number written in the test sources or the vault's test
    tokens: the cards the suite sends through the API."""
    found: set[str] = set()
    sources = [*TESTS.rglob("*.py"), *(TESTS.parent / "src" / "kassa" / "vault").glob("*.py")]
    for path in sources:
        for match in re.finditer(r"(?<![\d])(\d[\d ]{11,22}\d)(?![\d])", path.read_text()):
            digits = match.group(1).replace(" ", "")
            if 13 <= len(digits) <= 19 and _luhn_ok(digits) and len(set(digits)) > 1:
                found.add(digits)
    return found


@pytest.mark.last
def test_no_card_number_or_cvc_in_the_database_or_logs(pg_cluster, api_server, log_dir):
    numbers = _card_numbers_used_in_tests()
    assert "4242424242424242" in numbers
    assert len(numbers) > 10
    dump = pg_cluster.pg_dump("kassa")
    logs = {p.name: p.read_text(errors="replace") for p in log_dir.glob("api-*.log")}
    assert logs, "the API servers' logs are where the scan looks"
    for where, text in {"pg_dump": dump, **logs}.items():
        # bytea columns print as hex and may hold any digit run; ciphertext is no leak.
        plain = re.sub(r"\\x[0-9a-f]+", "", text)
        for number in numbers:
            assert number not in plain, f"card number …{number[-4:]} found in {where}"
        for account in BANK_ACCOUNTS:
            assert account not in plain, f"bank account …{account[-4:]} found in {where}"
        for cvc in KNOWN_CVCS:
            # As a value a client sent (a JSON or quoted string, a form field): a bare
            # four-digit number is also any amount the ledger tests posted.
            pattern = rf"[\"'=]{cvc}(?:[\"'&\s]|$)"
            assert not re.search(pattern, plain), f"a CVC found in {where}"
        assert not re.search(r"cvc[\"']?\s*[:=]\s*[\"']?\d{3,4}", plain, re.I), where
