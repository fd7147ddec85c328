"""Ledger errors a caller or operator can cause, in Stripe's error shape."""

from __future__ import annotations

from kassa.core.errors import InvalidRequest


class TransferRejected(InvalidRequest):
    """A batch had a transfer that neither succeeded nor already existed.

    Raised by ``raise_for_failures`` so a caller posting inside its own transaction rolls the
    whole business operation back."""

    def __init__(self, transfer_id: str, result: str) -> None:
        super().__init__(
            f"Ledger transfer '{transfer_id}' was rejected: {result}.",
            code=f"ledger_{result}",
            param="transfers",
        )
        self.transfer_id = transfer_id
        self.result = result


class AccountConflict(InvalidRequest):
    """An account key already exists with a different balance limit (its split may differ:
    see ``open_accounts_in``)."""

    def __init__(self, account_id: str, field: str) -> None:
        super().__init__(
            f"Ledger account '{account_id}' already exists with a different {field}.",
            code="ledger_account_exists_with_different_" + field,
        )
