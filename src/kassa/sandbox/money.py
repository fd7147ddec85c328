"""Exact conversion between integer minor units and decimal strings, per currency.

A currency's number of decimals comes from babel's CLDR data (JPY 0, EUR 2, KWD 3).
"""

from __future__ import annotations

import re
from functools import lru_cache

from babel.numbers import get_currency_precision

_DECIMAL = re.compile(r"^(\d{1,15})(?:\.(\d{1,6}))?$")


class AmountError(ValueError):
    """A decimal amount that is malformed or more precise than its currency allows."""


@lru_cache(maxsize=512)
def minor_exponent(currency: str) -> int:
    """Return how many decimals ``currency`` has (JPY 0, EUR 2, KWD 3)."""
    return int(get_currency_precision(currency.upper()))


def format_minor(amount: int, currency: str) -> str:
    """Format integer minor units as a decimal string: ``(1050, "EUR") -> "10.50"``."""
    exp = minor_exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


def parse_major(text: str, currency: str) -> int:
    """Parse a non-negative decimal string into minor units: ``("10.5", "EUR") -> 1050``.

    Fewer decimals than the currency has are fine; more are accepted only if the extra digits
    are zeros, so no amount is ever rounded.
    """
    m = _DECIMAL.match(text.strip())
    if m is None:
        raise AmountError(f"not a decimal amount: {text!r}")
    exp = minor_exponent(currency)
    scale: int = 10**exp
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > exp:
        if frac[exp:].strip("0"):
            raise AmountError(f"{currency} amounts have {exp} decimals at most: {text!r}")
        frac = frac[:exp]
    return int(whole) * scale + (int(frac.ljust(exp, "0")) if exp else 0)
