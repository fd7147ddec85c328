"""Currency conversion: two linked transfers through the platform's FX accounts."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from kassa.core.money import currency as parse_currency
from kassa.ledger.model import Transfer, journal


def converted_amount(amount: int, source: str, target: str, rate: Decimal) -> int:
    """``amount`` minor units of ``source`` in minor units of ``target`` at ``rate`` (target
    major units per source major unit), rounded half to even."""
    src, dst = parse_currency(source), parse_currency(target)
    value = Decimal(amount) * rate * (Decimal(10) ** (dst.exponent - src.exponent))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def conversion(
    id: str,
    *,
    debit: str,
    fx_source: str,
    fx_target: str,
    credit: str,
    amount: int,
    source_currency: str,
    target_currency: str,
    rate: Decimal,
    code: str = "fx_conversion",
) -> list[Transfer]:
    """The transfers converting ``amount`` of ``source_currency`` taken from ``debit`` into
    ``target_currency`` given to ``credit``: the source amount goes into the FX account of the
    source currency, the converted amount comes out of the FX account of the target currency.
    Linked under journal ``id``; the rate is recorded on both. Each account keeps one
    currency, and each currency still sums to zero."""
    if rate <= 0:
        raise ValueError("an exchange rate is positive")
    target_amount = converted_amount(amount, source_currency, target_currency, rate)
    meta = {
        "fx_rate": str(rate),
        "fx_source_currency": source_currency.lower(),
        "fx_source_amount": str(amount),
        "fx_target_currency": target_currency.lower(),
        "fx_target_amount": str(target_amount),
    }
    return journal(
        id,
        [
            Transfer.single(
                f"{id}:source", debit, fx_source, amount, source_currency, code, metadata=meta
            ),
            Transfer.single(
                f"{id}:target",
                fx_target,
                credit,
                target_amount,
                target_currency,
                code,
                metadata=meta,
            ),
        ],
    )
