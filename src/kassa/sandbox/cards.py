"""Card numbers: Luhn check, brand and BIN data, and the test cards every acquirer honours.

The test cards are the ones in ``reference/stripe-api.md``; any other Luhn-valid number is
approved. BIN data (brand, issuing country, funding) comes from ``bins.csv`` in this package,
longest prefix first, falling back to the brand's number ranges.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


class Outcome(enum.StrEnum):
    """How an issuer answers an authorisation, before the acquirer puts it in its own words."""

    APPROVED = "approved"
    GENERIC_DECLINE = "generic_decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    LOST_CARD = "lost_card"
    STOLEN_CARD = "stolen_card"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    PROCESSING_ERROR = "processing_error"
    INVALID_NUMBER = "invalid_number"
    UNSUPPORTED_BRAND = "unsupported_brand"
    AUTHENTICATION_REQUIRED = "authentication_required"
    AUTHENTICATION_FAILED = "authentication_failed"


class ThreeDS(enum.Enum):
    """When a card insists on 3-D Secure."""

    NEVER = "never"
    ALWAYS = "always"
    UNLESS_RECURRING = "unless_recurring"


@dataclass(frozen=True)
class ScriptedCard:
    """A card number with a scripted behaviour."""

    number: str
    description: str
    outcome: Outcome = Outcome.APPROVED
    three_ds: ThreeDS = ThreeDS.NEVER
    disputed: bool = False
    bypass_pending: bool = False


TEST_CARDS: dict[str, ScriptedCard] = {
    c.number: c
    for c in (
        ScriptedCard("4242424242424242", "succeeds (Visa)"),
        ScriptedCard("5555555555554444", "succeeds (Mastercard)"),
        ScriptedCard("378282246310005", "succeeds (Amex, 4-digit CVC)"),
        ScriptedCard("4000000000000002", "declined, generic", Outcome.GENERIC_DECLINE),
        ScriptedCard(
            "4000000000009995", "declined, insufficient funds", Outcome.INSUFFICIENT_FUNDS
        ),
        ScriptedCard("4000000000009987", "declined, lost card", Outcome.LOST_CARD),
        ScriptedCard("4000000000009979", "declined, stolen card", Outcome.STOLEN_CARD),
        ScriptedCard("4000000000000069", "declined, expired card", Outcome.EXPIRED_CARD),
        ScriptedCard("4000000000000127", "declined, incorrect CVC", Outcome.INCORRECT_CVC),
        ScriptedCard("4000000000000119", "processing error (retryable)", Outcome.PROCESSING_ERROR),
        ScriptedCard("4000002760003184", "always requires 3-D Secure", three_ds=ThreeDS.ALWAYS),
        ScriptedCard(
            "4000002500003155",
            "requires 3-D Secure unless the payment is recurring (card set up for future use)",
            three_ds=ThreeDS.UNLESS_RECURRING,
        ),
        ScriptedCard("4000000000000259", "succeeds, then disputed as fraudulent", disputed=True),
        ScriptedCard(
            "4000000000000077", "succeeds, funds settle at once (T+0)", bypass_pending=True
        ),
    )
}

_PLAIN = ScriptedCard("", "any other Luhn-valid number: succeeds")


@dataclass(frozen=True, slots=True)
class BinInfo:
    """What the first digits of a card number say about it."""

    brand: str
    country: str | None
    funding: str


def luhn_valid(number: str) -> bool:
    """Return True if ``number`` is 12–19 digits with a valid Luhn check digit."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def brand_from_range(number: str) -> str:
    """Return the card brand from the scheme's number ranges, or "unknown"."""
    two, four = int(number[:2]), int(number[:4])
    if number[0] == "4":
        return "visa"
    if two in (34, 37):
        return "amex"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if four == 6011 or 644 <= int(number[:3]) <= 649 or two == 65:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two in (36, 38, 39) or 300 <= int(number[:3]) <= 305:
        return "diners"
    if two == 62:
        return "unionpay"
    if two in (50, 56, 57, 58) or four in (6304, 6759, 6761, 6762, 6763):
        return "maestro"
    return "unknown"


@lru_cache(maxsize=1)
def _bin_table() -> tuple[dict[str, BinInfo], tuple[int, ...]]:
    text = resources.files("kassa.sandbox").joinpath("bins.csv").read_text("utf-8")
    table = {
        row["prefix"]: BinInfo(row["brand"], row["country"], row["funding"])
        for row in csv.DictReader(io.StringIO(text))
    }
    return table, tuple(sorted({len(p) for p in table}, reverse=True))


def bin_info(number: str) -> BinInfo:
    """Return brand, country and funding for a card number (longest known prefix wins)."""
    table, lengths = _bin_table()
    for n in lengths:
        info = table.get(number[:n])
        if info is not None:
            return info
    return BinInfo(brand_from_range(number), None, "unknown")


def scripted_card(number: str) -> ScriptedCard:
    """Return the scripted behaviour of ``number`` (plain success if it is not a test card)."""
    return TEST_CARDS.get(number, _PLAIN)


def countries() -> list[str]:
    """Return the issuing countries present in the BIN data."""
    table, _ = _bin_table()
    return sorted({i.country for i in table.values() if i.country})


def pan_fingerprint(number: str) -> str:
    """Return a stable, non-reversible tag for a card number (binds 3-D Secure results)."""
    return hashlib.sha256(b"kassa-sandbox-pan:" + number.encode()).hexdigest()[:32]


def cvc_length(brand: str) -> int:
    """Return the CVC length a brand uses (Amex 4, others 3)."""
    return 4 if brand == "amex" else 3
