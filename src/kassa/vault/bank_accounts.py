"""Bank accounts for direct debits: ABA routing numbers and US account numbers (ACH), IBANs
(SEPA). Validation answers Stripe's errors, naming the parameter; nothing here ever puts an
account number or IBAN into a message."""

from __future__ import annotations

from kassa.core.errors import InvalidRequest

# Where the bank (and branch) code sits in a country's IBAN: (bank start, bank end, branch end).
# Other countries show the first four characters of the BBAN as the bank code.
_IBAN_CODES = {
    "AT": (4, 9, 9),
    "BE": (4, 7, 7),
    "DE": (4, 12, 12),
    "ES": (4, 8, 12),
    "FR": (4, 9, 14),
    "IT": (5, 10, 15),
    "NL": (4, 8, 8),
}
# ISO 13616 lengths for the SEPA countries Kassa debits most; others are checked by mod-97.
_IBAN_LENGTHS = {"AT": 20, "BE": 16, "DE": 22, "ES": 24, "FR": 27, "IT": 27, "NL": 18}


def aba_valid(routing: str) -> bool:
    """True for a 9-digit ABA routing number whose checksum holds."""
    if len(routing) != 9 or not (routing.isascii() and routing.isdigit()):
        return False
    weights = (3, 7, 1) * 3
    return sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10 == 0


def check_us_account(routing_number: str, account_number: str) -> tuple[str, str]:
    """The routing and account number, validated (Stripe's errors naming the parameter)."""
    routing = routing_number.strip()
    number = account_number.strip()
    if not aba_valid(routing):
        raise InvalidRequest(
            "The routing number provided is not a valid ABA routing number.",
            code="routing_number_invalid",
            param="us_bank_account[routing_number]",
        )
    if not (number.isascii() and number.isdigit()) or not 4 <= len(number) <= 17:
        raise InvalidRequest(
            "The account number must be 4 to 17 digits.",
            code="account_number_invalid",
            param="us_bank_account[account_number]",
        )
    return routing, number


def normalize_iban(raw: str) -> str:
    """The IBAN without spaces, upper case, checked (ISO 13616 mod-97 and the country's
    length where known)."""
    iban = raw.replace(" ", "").upper()
    # ASCII first: str.isdigit/isalnum accept "²" or "é", which int() then refuses.
    valid = iban.isascii() and 15 <= len(iban) <= 34 and iban[:2].isalpha() and iban[2:4].isdigit()
    valid = valid and iban.isalnum() and _IBAN_LENGTHS.get(iban[:2], len(iban)) == len(iban)
    if not valid or int("".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])) % 97 != 1:
        raise InvalidRequest(
            "The IBAN you provided appears to be invalid.",
            code="invalid_bank_account_iban",
            param="sepa_debit[iban]",
        )
    return iban


def iban_codes(iban: str) -> tuple[str, str | None]:
    """(bank code, branch code) as Stripe's ``sepa_debit`` shows them."""
    start, bank_end, branch_end = _IBAN_CODES.get(iban[:2], (4, 8, 8))
    branch = iban[bank_end:branch_end] or None
    return iban[start:bank_end], branch
