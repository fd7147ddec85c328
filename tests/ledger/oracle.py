"""A reference ledger in plain Python: the semantics of ``ledger_post`` written the obvious
way (one transfer at a time, state in dicts), to check the database against."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kassa.ledger.model import (
    EXPIRE,
    LINKED,
    PENDING,
    POST_PENDING,
    TRANSIENT,
    VOID_PENDING,
    Transfer,
)
from kassa.ledger.model import Result as R

MAX = 2**63 - 1


@dataclass
class Acct:
    currency: str
    dlim: bool = False
    clim: bool = False
    closed: bool = False
    dp: int = 0
    cp: int = 0
    dpend: int = 0
    cpend: int = 0


@dataclass
class Stored:
    flags: int
    pending_id: str | None
    timeout: int
    dr: str
    cr: str
    amount: int
    metadata: Any
    currency: str
    code: str
    journal: str | None
    created_at: float  # model clock, seconds


@dataclass
class Oracle:
    accounts: dict[str, Acct] = field(default_factory=dict)
    transfers: dict[str, Stored] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    journals: set[str] = field(default_factory=set)
    resolution: dict[str, str] = field(default_factory=dict)

    def _static(self, t: Transfer, i: int, batch: list[Transfer]) -> str | None:
        fl = t.flags
        pv = bool(fl & (POST_PENDING | VOID_PENDING))
        if i == len(batch) - 1 and fl & LINKED:
            return R.LINKED_EVENT_CHAIN_OPEN
        if not t.id:
            return R.ID_MUST_NOT_BE_EMPTY
        if len(t.id) > (255 if fl & EXPIRE else 200):
            return R.ID_TOO_LONG
        if fl & ~31:
            return R.RESERVED_FLAG
        if sum(bool(fl & b) for b in (PENDING, POST_PENDING, VOID_PENDING)) > 1 or (
            fl & EXPIRE and not fl & VOID_PENDING
        ):
            return R.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if not pv and not t.debit_account_id:
            return R.DEBIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
        if not pv and not t.credit_account_id:
            return R.CREDIT_ACCOUNT_ID_MUST_NOT_BE_EMPTY
        if t.debit_account_id is not None and t.debit_account_id == t.credit_account_id:
            return R.ACCOUNTS_MUST_BE_DIFFERENT
        if not pv and t.pending_id is not None:
            return R.PENDING_ID_MUST_BE_EMPTY
        if pv and not t.pending_id:
            return R.PENDING_ID_MUST_NOT_BE_EMPTY
        if pv and t.pending_id == t.id:
            return R.PENDING_ID_MUST_BE_DIFFERENT
        if t.timeout < 0:
            return R.TIMEOUT_MUST_NOT_BE_NEGATIVE
        if not fl & PENDING and t.timeout != 0:
            return R.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if not pv and (t.amount is None or t.amount <= 0):
            return R.AMOUNT_MUST_BE_POSITIVE
        if pv and t.amount is not None and t.amount <= 0:
            return R.AMOUNT_MUST_BE_POSITIVE
        if not pv and not t.currency:
            return R.CURRENCY_MUST_NOT_BE_EMPTY
        if not pv and not t.code:
            return R.CODE_MUST_NOT_BE_EMPTY
        if t.journal_id is not None and not _journal_ok(t.journal_id, batch):
            return R.JOURNAL_MUST_BE_ONE_LINKED_CHAIN
        return None

    @staticmethod
    def compare(t: Transfer, s: Stored) -> str:
        checks = [
            ("flags", t.flags != s.flags),
            ("pending_id", t.pending_id != s.pending_id),
            ("timeout", t.timeout != s.timeout),
            ("debit_account_id", t.debit_account_id is not None and t.debit_account_id != s.dr),
            ("credit_account_id", t.credit_account_id is not None and t.credit_account_id != s.cr),
            ("amount", t.amount is not None and t.amount != s.amount),
            ("metadata", t.metadata != s.metadata),
            ("currency", t.currency is not None and t.currency != s.currency),
            ("code", t.code is not None and t.code != s.code),
            ("journal_id", t.journal_id != s.journal),
        ]
        for name, differs in checks:
            if differs:
                return f"exists_with_different_{name}"
        return R.EXISTS

    def post(self, batch: list[Transfer], now: float) -> list[str]:
        """Apply ``batch`` at model time ``now``; the result code of each transfer."""
        results: list[str] = []
        chain_start: int | None = None
        chain_failed = False
        snapshot: Any = None
        burned: list[str] = []
        for i, t in enumerate(batch):
            if chain_start is not None and chain_failed:
                code: str | None = R.LINKED_EVENT_FAILED
            else:
                if chain_start is None and t.flags & LINKED:
                    chain_start, chain_failed = i, False
                    snapshot = copy.deepcopy(
                        (self.accounts, self.transfers, self.failed, self.journals, self.resolution)
                    )
                code = self._one(t, i, batch, now)
                if code is None:
                    pass
                elif code != R.EXISTS:
                    if code in TRANSIENT:
                        burned.append(t.id)
                    if chain_start is not None:
                        (
                            self.accounts,
                            self.transfers,
                            self.failed,
                            self.journals,
                            self.resolution,
                        ) = snapshot
                        for k in range(chain_start, i):
                            results[k] = R.LINKED_EVENT_FAILED
                        chain_failed = True
                    if code in TRANSIENT:
                        self.failed.add(t.id)
            results.append(code or R.OK)
            if chain_start is not None and not t.flags & LINKED:
                chain_start, chain_failed = None, False
        return [str(r) for r in results]

    def _one(self, t: Transfer, i: int, batch: list[Transfer], now: float) -> str | None:
        code = self._static(t, i, batch)
        if code:
            return code
        if t.id in self.transfers:
            return self.compare(t, self.transfers[t.id])
        if t.id in self.failed:
            return R.ID_ALREADY_FAILED
        fl = t.flags
        pv = bool(fl & (POST_PENDING | VOID_PENDING))
        if pv:
            p = self.transfers.get(t.pending_id or "")
            if p is None:
                return R.PENDING_TRANSFER_NOT_FOUND
            if not p.flags & PENDING:
                return R.PENDING_TRANSFER_NOT_PENDING
            if t.debit_account_id is not None and t.debit_account_id != p.dr:
                return R.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
            if t.credit_account_id is not None and t.credit_account_id != p.cr:
                return R.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
            if t.currency is not None and t.currency != p.currency:
                return R.PENDING_TRANSFER_HAS_DIFFERENT_CURRENCY
            if t.code is not None and t.code != p.code:
                return R.PENDING_TRANSFER_HAS_DIFFERENT_CODE
            if fl & POST_PENDING and t.amount is not None and t.amount > p.amount:
                return R.EXCEEDS_PENDING_TRANSFER_AMOUNT
            if fl & VOID_PENDING and t.amount is not None and t.amount != p.amount:
                return R.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
            res = self.resolution.get(t.pending_id or "")
            expired = p.timeout > 0 and p.created_at + p.timeout <= now
            if res == "expired":
                return R.PENDING_TRANSFER_EXPIRED
            if res:
                return f"pending_transfer_already_{res}"
            if expired and not fl & EXPIRE:
                return R.PENDING_TRANSFER_EXPIRED
            if fl & EXPIRE and not expired:
                return R.PENDING_TRANSFER_NOT_EXPIRED
            dr, cr, cur, biz = p.dr, p.cr, p.currency, p.code
            amount = (
                (t.amount if t.amount is not None else p.amount) if fl & POST_PENDING else p.amount
            )
        else:
            dr, cr = t.debit_account_id or "", t.credit_account_id or ""
            if dr not in self.accounts:
                return R.DEBIT_ACCOUNT_NOT_FOUND
            if cr not in self.accounts:
                return R.CREDIT_ACCOUNT_NOT_FOUND
            if self.accounts[dr].currency != self.accounts[cr].currency:
                return R.ACCOUNTS_MUST_HAVE_THE_SAME_CURRENCY
            if self.accounts[dr].currency != t.currency:
                return R.TRANSFER_MUST_HAVE_THE_SAME_CURRENCY_AS_ACCOUNTS
            cur, biz, amount = t.currency, t.code or "", t.amount or 0
        if t.journal_id is not None and t.journal_id in self.journals:
            return R.JOURNAL_ALREADY_EXISTS
        d, c = self.accounts[dr], self.accounts[cr]
        if not fl & VOID_PENDING:
            if d.closed:
                return R.DEBIT_ACCOUNT_ALREADY_CLOSED
            if c.closed:
                return R.CREDIT_ACCOUNT_ALREADY_CLOSED
        if not pv:
            if d.dp + d.dpend + amount > MAX:
                return R.OVERFLOWS_DEBITS
            if c.cp + c.cpend + amount > MAX:
                return R.OVERFLOWS_CREDITS
            if d.dlim and d.dp + d.dpend + amount > d.cp:
                return R.EXCEEDS_CREDITS
            if c.clim and c.cp + c.cpend + amount > c.dp:
                return R.EXCEEDS_DEBITS
        if fl & PENDING:
            d.dpend += amount
            c.cpend += amount
        elif pv:
            p = self.transfers[t.pending_id or ""]
            d.dpend -= p.amount
            c.cpend -= p.amount
            if fl & POST_PENDING:
                d.dp += amount
                c.cp += amount
            self.resolution[t.pending_id or ""] = (
                "expired" if fl & EXPIRE else "posted" if fl & POST_PENDING else "voided"
            )
        else:
            d.dp += amount
            c.cp += amount
        self.transfers[t.id] = Stored(
            fl,
            t.pending_id,
            t.timeout,
            dr,
            cr,
            amount,
            t.metadata,
            cur or "",
            biz,
            t.journal_id,
            now,
        )
        if t.journal_id is not None:
            # Marked at the end of the batch in the database; within one batch a journal is
            # one chain, so marking now is the same.
            pass
        return None

    def finish_batch(self, batch: list[Transfer], results: list[str]) -> None:
        for t, r in zip(batch, results, strict=True):
            if r == R.OK and t.journal_id is not None:
                self.journals.add(t.journal_id)


def _journal_ok(journal: str, batch: list[Transfer]) -> bool:
    chain_no = 0
    chains: list[int] = []
    for t in batch:
        chains.append(chain_no)
        if not t.flags & LINKED:
            chain_no += 1
    mine = [chains[i] for i, t in enumerate(batch) if t.journal_id == journal]
    if len(set(mine)) != 1:
        return False
    return chains.count(mine[0]) == len(mine)
