"""Money in integer minor units, with currency exponents from CLDR (via Babel) rather than a
hand-typed table: JPY and KRW have none, KWD, BHD and JOD three, most others two."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from babel.numbers import get_currency_precision, list_currencies

from kassa.core.errors import InvalidRequest

# Stripe's minimum charge amounts (presentment currency, minor units) for the common
# currencies; elsewhere the minimum is one major unit's worth in that currency's exponent.
_MINIMUM_CHARGE: dict[str, int] = {
    "usd": 50,
    "aed": 200,
    "aud": 50,
    "bgn": 100,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "inr": 50,
    "jpy": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "pln": 200,
    "ron": 200,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
}


@cache
def _known() -> frozenset[str]:
    return frozenset(code.lower() for code in list_currencies())


def is_currency(code: str) -> bool:
    """True for a current ISO 4217 code (case-insensitive)."""
    return code.lower() in _known()


@dataclass(frozen=True, slots=True)
class Currency:
    code: str  # lower case, as Stripe writes it
    exponent: int

    @property
    def minimum_charge(self) -> int:
        return _MINIMUM_CHARGE.get(self.code, 1)


@cache
def currency(code: str, param: str = "currency") -> Currency:
    """The currency for an ISO code, or a 400 naming ``param``."""
    c = code.lower()
    if c not in _known():
        raise InvalidRequest(f"Invalid currency: {code}.", code="invalid_currency", param=param)
    return Currency(c, get_currency_precision(c.upper()))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of one currency. Never a float."""

    amount: int
    currency: Currency

    def to_decimal(self) -> Decimal:
        """The major-unit decimal, e.g. for a PSP that wants ``"10.00"``."""
        return Decimal(self.amount).scaleb(-self.currency.exponent)

    def format(self) -> str:
        return f"{self.to_decimal():.{self.currency.exponent}f} {self.currency.code.upper()}"

    @classmethod
    def from_decimal(cls, value: Decimal | str, currency: Currency) -> Money:
        """Parse a major-unit amount; refuses values with more digits than the currency has."""
        d = Decimal(value).scaleb(currency.exponent)
        if d != d.to_integral_value():
            raise ValueError(f"{value} has more decimals than {currency.code}")
        return cls(int(d), currency)
