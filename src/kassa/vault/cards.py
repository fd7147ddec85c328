"""What can be learnt from a card number without asking anyone: its validity (length, Luhn),
its brand (the schemes' IIN ranges), its issuing country and funding (``bins.csv``), and its
fingerprint. Pure functions; nothing here stores or logs a number."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from kassa.vault.errors import CardError

# Stripe's ``card.brand`` values for the schemes Kassa recognises.
BRANDS = ("amex", "diners", "discover", "jcb", "mastercard", "unionpay", "visa", "unknown")

# ``card.display_brand`` spells some brands out.
DISPLAY_BRAND = {
    "amex": "american_express",
    "diners": "diners_club",
    "discover": "discover",
    "jcb": "jcb",
    "mastercard": "mastercard",
    "unionpay": "union_pay",
    "visa": "visa",
    "unknown": "other",
}

_ANY_LENGTH = tuple(range(12, 20))
_LENGTHS: dict[str, tuple[int, ...]] = {
    "visa": (13, 16, 19),
    "mastercard": (16,),
    "amex": (15,),
    "discover": tuple(range(16, 20)),
    "diners": tuple(range(14, 20)),
    "jcb": tuple(range(16, 20)),
    "unionpay": tuple(range(16, 20)),
    "unknown": _ANY_LENGTH,
}

# Where a BIN is not in the data file, some schemes still say where the card comes from.
_BRAND_COUNTRY: dict[str, str] = {"jcb": "JP", "unionpay": "CN"}

# Expiry years further ahead than this are typos, as Stripe judges them.
MAX_YEARS_AHEAD = 50

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
FINGERPRINT_LENGTH = 16


@dataclass(frozen=True, slots=True)
class BinInfo:
    """What the first digits of a card number say about the card."""

    brand: str
    country: str | None
    funding: str


def luhn_valid(digits: str) -> bool:
    """True if the last digit of ``digits`` is its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def brand_of(number: str) -> tuple[str, tuple[int, ...]]:
    """The brand from the schemes' IIN ranges, and the lengths its numbers may have."""
    one, two, three = int(number[:1]), int(number[:2]), int(number[:3])
    four, six = int(number[:4]), int(number[:6])
    if one == 4:
        return "visa", _LENGTHS["visa"]
    if two in (34, 37):
        return "amex", _LENGTHS["amex"]
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard", _LENGTHS["mastercard"]
    if four == 6011 or 644 <= three <= 649 or (two == 65):
        return "discover", _LENGTHS["discover"]
    if 3528 <= four <= 3589:
        return "jcb", _LENGTHS["jcb"]
    if 300 <= three <= 305 or four == 3095 or two in (36, 38, 39):
        return "diners", _LENGTHS["diners"]
    if two in (62, 81) and not 622126 <= six <= 622925:
        return "unionpay", _LENGTHS["unionpay"]
    if 622126 <= six <= 622925:  # co-branded UnionPay/Discover, acquired as Discover
        return "discover", _LENGTHS["discover"]
    if two in (50, 56, 57, 58) or four in (6304, 6759, 6761, 6762, 6763):
        # Maestro: a Mastercard scheme, with numbers of any length from 12 to 19.
        return "mastercard", _ANY_LENGTH
    return "unknown", _LENGTHS["unknown"]


@cache
def _bin_table() -> tuple[dict[str, BinInfo], tuple[int, ...]]:
    text = resources.files("kassa.vault").joinpath("bins.csv").read_text("utf-8")
    table = {
        row["prefix"]: BinInfo(row["brand"], row["country"] or None, row["funding"])
        for row in csv.DictReader(io.StringIO(text))
    }
    return table, tuple(sorted({len(p) for p in table}, reverse=True))


def bin_info(number: str) -> BinInfo:
    """Brand, issuing country and funding of a card number: the longest matching prefix in
    ``bins.csv``, else the brand's range with funding ``credit`` (most cards worldwide) and the
    country only where the scheme implies one."""
    table, lengths = _bin_table()
    for n in lengths:
        info = table.get(number[:n])
        if info is not None:
            return info
    brand, _ = brand_of(number)
    return BinInfo(brand, _BRAND_COUNTRY.get(brand), "credit")


def countries() -> list[str]:
    """The issuing countries the BIN data knows."""
    table, _ = _bin_table()
    return sorted({i.country for i in table.values() if i.country})


def normalize_number(raw: str) -> str:
    """The digits of a card number as typed (spaces and dashes allowed), or ``incorrect_number``
    when it cannot be a card number of its brand."""
    digits = raw.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise _incorrect_number()
    _, lengths = brand_of(digits)
    if len(digits) not in lengths or not luhn_valid(digits):
        raise _incorrect_number()
    return digits


def _incorrect_number() -> CardError:
    # Never echo the number: error messages reach logs and clients.
    return CardError(
        "Your card number is incorrect.", code="incorrect_number", param="card[number]"
    )


def check_exp_month(exp_month: int) -> int:
    if not 1 <= exp_month <= 12:
        raise CardError(
            "Your card's expiration month is invalid.",
            code="invalid_expiry_month",
            param="card[exp_month]",
        )
    return exp_month


def normalize_exp_year(exp_year: int) -> int:
    """Two-digit years mean this century (``27`` is 2027), as Stripe accepts them."""
    return exp_year + 2000 if 0 <= exp_year < 100 else exp_year


def check_expiry(exp_month: int, exp_year: int, now: datetime) -> tuple[int, int]:
    """Validate an expiry date against ``now``: a card is good through its expiry month."""
    exp_month = check_exp_month(exp_month)
    exp_year = normalize_exp_year(exp_year)
    if exp_year < now.year or exp_year > now.year + MAX_YEARS_AHEAD:
        raise CardError(
            "Your card's expiration year is invalid.",
            code="invalid_expiry_year",
            param="card[exp_year]",
        )
    if (exp_year, exp_month) < (now.year, now.month):
        raise CardError(
            "Your card's expiration month is invalid.",
            code="invalid_expiry_month",
            param="card[exp_month]",
        )
    return exp_month, exp_year


def cvc_length(brand: str) -> int:
    """Amex prints a 4-digit CID on the front; every other scheme a 3-digit code."""
    return 4 if brand == "amex" else 3


def check_cvc(cvc: str, brand: str) -> str:
    if not (cvc.isascii() and cvc.isdigit() and len(cvc) == cvc_length(brand)):
        raise CardError(
            "Your card's security code is invalid.", code="invalid_cvc", param="card[cvc]"
        )
    return cvc


def fingerprint(key: bytes, number: str) -> str:
    """A keyed, non-reversible tag of the card number: equal for equal numbers whichever
    merchant tokenized them (duplicate detection, fraud velocity), useless without ``key``
    (PCI DSS 3.5.1 accepts keyed hashes of PANs, not plain ones, which a BIN and last four
    reduce to a few million guesses)."""
    digest = hmac.new(key, number.encode(), hashlib.sha256).digest()
    n = int.from_bytes(digest[:12])
    out = []
    for _ in range(FINGERPRINT_LENGTH):
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return "".join(out)
