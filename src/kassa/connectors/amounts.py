"""Exact conversion between Kassa's integer minor units and decimal strings in a currency's
own precision (``1050`` EUR ↔ ``"10.50"``, JPY ↔ ``"1050"``, KWD ↔ ``"1.050"``), with the
exponents from ``kassa.core.money`` (CLDR). Integer arithmetic only: nothing is ever rounded."""

from __future__ import annotations

import re

from kassa.connectors.base import Rejected
from kassa.core.errors import KassaError
from kassa.core.money import currency

_DECIMAL = re.compile(r"^(-?)(\d{1,18})(?:\.(\d{1,9}))?$")


def exponent(code: str) -> int:
    """Decimal places of ``code`` (JPY 0, EUR 2, KWD 3)."""
    try:
        return currency(code).exponent
    except KassaError as exc:
        raise Rejected(f"unknown currency {code!r}") from exc


def to_decimal_string(amount: int, code: str) -> str:
    """Minor units as a decimal string with exactly the currency's decimals."""
    exp = exponent(code)
    sign = "-" if amount < 0 else ""
    scale: int = 10**exp
    whole, frac = divmod(abs(amount), scale)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


def from_decimal_string(text: str, code: str) -> int:
    """Parse a decimal string into minor units. Fewer decimals than the currency has are fine;
    more are accepted only when the extra digits are zeros, so no amount is ever rounded.
    Raises ``ValueError`` for anything else."""
    m = _DECIMAL.match(text.strip())
    if m is None:
        raise ValueError(f"not a decimal amount: {text!r}")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    exp = exponent(code)
    if len(frac) > exp:
        if frac[exp:].strip("0"):
            raise ValueError(f"{code.upper()} has {exp} decimals; {text!r} has more")
        frac = frac[:exp]
    scale: int = 10**exp
    value = int(whole) * scale + (int(frac.ljust(exp, "0")) if exp else 0)
    return -value if sign else value
