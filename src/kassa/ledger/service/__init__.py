"""The ledger's service API: what other domains call. Split by concern (posting, accounts,
reads, verification, expiry, FX); everything is re-exported here."""

from kassa.ledger.service.accounts import (
    account_id,
    close_account,
    open_accounts,
    open_accounts_in,
    spec_id,
)
from kassa.ledger.service.expiry import void_expired_pending
from kassa.ledger.service.fx import conversion, converted_amount
from kassa.ledger.service.group_commit import GroupCommitter
from kassa.ledger.service.posting import (
    MAX_BATCH,
    post_transfers,
    post_transfers_in,
    raise_for_failures,
)
from kassa.ledger.service.reads import (
    Account,
    HistoryEntry,
    balance,
    get_account,
    get_accounts,
    get_transfer,
    history,
    totals,
)
from kassa.ledger.service.verify import Report, verify

__all__ = [
    "MAX_BATCH",
    "Account",
    "GroupCommitter",
    "HistoryEntry",
    "Report",
    "account_id",
    "balance",
    "close_account",
    "conversion",
    "converted_amount",
    "get_account",
    "get_accounts",
    "get_transfer",
    "history",
    "open_accounts",
    "open_accounts_in",
    "post_transfers",
    "post_transfers_in",
    "raise_for_failures",
    "spec_id",
    "totals",
    "verify",
    "void_expired_pending",
]
