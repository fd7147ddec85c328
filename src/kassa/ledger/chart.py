"""The standard chart of accounts, per merchant and currency. Other domains open what they
post to through these, so the same purpose always gets the same flags and split.

Sign conventions: merchant balances, fees and FX are credit-normal (``Balance.posted`` is
what the account holds); PSP clearing and external accounts are debit-normal (what is owed to
us is ``-posted``)."""

from __future__ import annotations

from kassa.ledger.model import AccountSpec

# Accounts written by every payment are split this many ways (summed on read).
HOT_SHARDS = 8


def merchant_pending(currency: str, shards: int = HOT_SHARDS) -> AccountSpec:
    """Captured funds not yet settled (Stripe's ``pending`` balance); may go negative. Every
    capture of the merchant writes it (twice: the capture and the fee), so it is split: one
    row would let a merchant's payments commit one at a time."""
    return AccountSpec("merchant", "pending", currency, shards=shards)


def merchant_available(currency: str) -> AccountSpec:
    """Settled funds the merchant can be paid out; may go negative (refunds, disputes)."""
    return AccountSpec("merchant", "available", currency)


def merchant_reserve(currency: str) -> AccountSpec:
    """Funds held back from payouts; never releases more than it holds."""
    return AccountSpec("merchant", "reserve", currency, debits_must_not_exceed_credits=True)


def dispute_holds(currency: str) -> AccountSpec:
    """Disputed amounts withheld until the dispute closes."""
    return AccountSpec("merchant", "dispute_holds", currency, debits_must_not_exceed_credits=True)


def payouts_in_transit(currency: str) -> AccountSpec:
    """Payouts sent to the bank and not yet confirmed."""
    return AccountSpec("merchant", "payouts_in_transit", currency)


def platform_fees(currency: str, shards: int = HOT_SHARDS) -> AccountSpec:
    """The platform's fee revenue from this merchant: written by every capture, so split."""
    return AccountSpec("platform", "fees", currency, shards=shards)


def psp_clearing(psp: str, currency: str, shards: int = HOT_SHARDS) -> AccountSpec:
    """What a PSP owes us for this merchant's captures until it settles: split."""
    return AccountSpec(f"psp:{psp}", "clearing", currency, shards=shards)


def fx(currency: str, shards: int = HOT_SHARDS) -> AccountSpec:
    """The platform's position in one currency from conversions (one per side)."""
    return AccountSpec("platform", "fx", currency, shards=shards)


def external(name: str, currency: str) -> AccountSpec:
    """The outside world (a bank, a funding source): where money enters and leaves."""
    return AccountSpec(f"external:{name}", "settlement", currency)
