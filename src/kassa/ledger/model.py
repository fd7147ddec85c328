"""The ledger's value types: what callers post and what they get back."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

# Transfer flags, as stored (TigerBeetle's bits, plus EXPIRE for voids made by the timeout job).
LINKED = 1
PENDING = 2
POST_PENDING = 4
VOID_PENDING = 8
EXPIRE = 16


class Result(enum.StrEnum):
    """What happened to one transfer of a batch. ``ok`` and ``exists`` are successes."""

    OK = "ok"
    EXISTS = "exists"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    ID_MUST_NOT_BE_EMPTY = "id_must_not_be_empty"
    ID_TOO_LONG = "id_too_long"
    RESERVED_FLAG = "reserved_flag"
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = "flags_are_mutually_exclusive"
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY = "debit_account_id_must_not_be_empty"
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY = "credit_account_id_must_not_be_empty"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    PENDING_ID_MUST_BE_EMPTY = "pending_id_must_be_empty"
    PENDING_ID_MUST_NOT_BE_EMPTY = "pending_id_must_not_be_empty"
    PENDING_ID_MUST_BE_DIFFERENT = "pending_id_must_be_different"
    TIMEOUT_MUST_NOT_BE_NEGATIVE = "timeout_must_not_be_negative"
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = "timeout_reserved_for_pending_transfer"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    CURRENCY_MUST_NOT_BE_EMPTY = "currency_must_not_be_empty"
    CODE_MUST_NOT_BE_EMPTY = "code_must_not_be_empty"
    JOURNAL_MUST_BE_ONE_LINKED_CHAIN = "journal_must_be_one_linked_chain"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_PENDING_ID = "exists_with_different_pending_id"
    EXISTS_WITH_DIFFERENT_TIMEOUT = "exists_with_different_timeout"
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = "exists_with_different_debit_account_id"
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = "exists_with_different_credit_account_id"
    EXISTS_WITH_DIFFERENT_AMOUNT = "exists_with_different_amount"
    EXISTS_WITH_DIFFERENT_METADATA = "exists_with_different_metadata"
    EXISTS_WITH_DIFFERENT_CURRENCY = "exists_with_different_currency"
    EXISTS_WITH_DIFFERENT_CODE = "exists_with_different_code"
    EXISTS_WITH_DIFFERENT_JOURNAL_ID = "exists_with_different_journal_id"
    ID_ALREADY_FAILED = "id_already_failed"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ACCOUNTS_MUST_HAVE_THE_SAME_CURRENCY = "accounts_must_have_the_same_currency"
    TRANSFER_MUST_HAVE_THE_SAME_CURRENCY_AS_ACCOUNTS = (
        "transfer_must_have_the_same_currency_as_accounts"
    )
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = (
        "pending_transfer_has_different_debit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = (
        "pending_transfer_has_different_credit_account_id"
    )
    PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY = "pending_transfer_has_different_currency"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = "pending_transfer_has_different_amount"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    PENDING_TRANSFER_NOT_EXPIRED = "pending_transfer_not_expired"
    JOURNAL_ALREADY_EXISTS = "journal_already_exists"
    DEBIT_ACCOUNT_ALREADY_CLOSED = "debit_account_already_closed"
    CREDIT_ACCOUNT_ALREADY_CLOSED = "credit_account_already_closed"
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    EXCEEDS_CREDITS = "exceeds_credits"
    EXCEEDS_DEBITS = "exceeds_debits"

    @property
    def succeeded(self) -> bool:
        return self in (Result.OK, Result.EXISTS)


# Failures that depend on state which could change later: the id is burned, so a retry can
# never succeed with effects the first attempt did not have (TigerBeetle ≥ 0.16.4).
TRANSIENT = frozenset(
    {
        Result.DEBIT_ACCOUNT_NOT_FOUND,
        Result.CREDIT_ACCOUNT_NOT_FOUND,
        Result.PENDING_TRANSFER_NOT_FOUND,
        Result.EXCEEDS_CREDITS,
        Result.EXCEEDS_DEBITS,
        Result.DEBIT_ACCOUNT_ALREADY_CLOSED,
        Result.CREDIT_ACCOUNT_ALREADY_CLOSED,
        Result.OVERFLOWS_DEBITS,
        Result.OVERFLOWS_CREDITS,
    }
)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement: ``amount`` minor units of ``currency`` from the debit account to the credit
    account. Build them with the class methods; ``id`` is chosen by the caller from business
    ids (``ch_…:capture``) so a retry is recognised."""

    id: str
    debit_account_id: str | None
    credit_account_id: str | None
    amount: int | None
    currency: str | None
    code: str | None
    flags: int = 0
    pending_id: str | None = None
    timeout: int = 0
    journal_id: str | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def single(
        cls,
        id: str,
        debit: str,
        credit: str,
        amount: int,
        currency: str,
        code: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Transfer:
        """A transfer that posts at once."""
        return cls(id, debit, credit, amount, currency, code, metadata=metadata)

    @classmethod
    def pending(
        cls,
        id: str,
        debit: str,
        credit: str,
        amount: int,
        currency: str,
        code: str,
        *,
        timeout: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> Transfer:
        """A hold: reserves ``amount`` against the accounts' limits until posted or voided
        (or, with ``timeout`` seconds, voided by ``void_expired_pending``)."""
        return cls(
            id, debit, credit, amount, currency, code, PENDING, timeout=timeout, metadata=metadata
        )

    @classmethod
    def post(
        cls,
        id: str,
        pending_id: str,
        amount: int | None = None,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Transfer:
        """Post a pending transfer, in full (``amount=None``) or in part; the rest is released."""
        return cls(id, None, None, amount, None, None, POST_PENDING, pending_id, metadata=metadata)

    @classmethod
    def void(cls, id: str, pending_id: str, *, metadata: dict[str, Any] | None = None) -> Transfer:
        """Release a pending transfer's hold entirely."""
        return cls(id, None, None, None, None, None, VOID_PENDING, pending_id, metadata=metadata)

    @property
    def linked(self) -> bool:
        return bool(self.flags & LINKED)

    def with_link(self, linked: bool) -> Transfer:
        return replace(self, flags=(self.flags | LINKED) if linked else (self.flags & ~LINKED))


def linked(transfers: Sequence[Transfer]) -> list[Transfer]:
    """The transfers as one chain: all succeed or all fail."""
    last = len(transfers) - 1
    return [t.with_link(i < last) for i, t in enumerate(transfers)]


def journal(entry_id: str, transfers: Sequence[Transfer]) -> list[Transfer]:
    """A journal entry: the transfers of one business event (a capture and its fee), linked
    into one chain under ``entry_id``, so the entry is committed whole or not at all."""
    return [replace(t, journal_id=entry_id) for t in linked(transfers)]


@dataclass(frozen=True, slots=True)
class Batch:
    """Transfers of one merchant in one mode, posted in one call and one commit.

    One merchant per batch keeps every database transaction on one merchant's rows."""

    merchant_id: str
    livemode: bool
    transfers: Sequence[Transfer]


@dataclass(frozen=True, slots=True)
class TransferResult:
    id: str
    result: Result
    # Ledger time (unix microseconds) of a transfer created by this call.
    timestamp: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.result.succeeded


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What identifies an account and how it behaves."""

    owner: str
    purpose: str
    currency: str
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    # Split into this many sub-accounts (summed on read) when every payment writes it.
    shards: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's four counters (minor units), summed over its sub-accounts."""

    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0

    @property
    def posted(self) -> int:
        """Credits minus debits, posted: the balance of a credit-normal account (what a
        merchant is owed); negate it for debit-normal ones (what a PSP owes us)."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What may still be debited from a credit-normal account once holds are counted."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    def __add__(self, other: Balance) -> Balance:
        return Balance(
            self.debits_posted + other.debits_posted,
            self.credits_posted + other.credits_posted,
            self.debits_pending + other.debits_pending,
            self.credits_pending + other.credits_pending,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "debits_posted": self.debits_posted,
            "credits_posted": self.credits_posted,
            "debits_pending": self.debits_pending,
            "credits_pending": self.credits_pending,
            "posted": self.posted,
            "available": self.available,
        }
