"""Stateful property test: random batches (single, pending, post, void, retries, linked chains,
journal entries, invalid requests), account closes and timeouts, checked against the Python
oracle after every step, with the database's own invariants (``verify``) and balances."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kassa.core import clock
from kassa.ledger import service as ledger
from kassa.ledger.model import (
    EXPIRE,
    LINKED,
    VOID_PENDING,
    Batch,
    Transfer,
    journal,
)
from kassa.ledger.service.expiry import expiry_id
from tests.ledger.conftest import SPECS, LoopRunner, make_book
from tests.ledger.oracle import Acct, Oracle

NAMES = [*SPECS, "missing"]
TIMEOUTS = [0, 0, 50, 150]


class LedgerMachine(RuleBasedStateMachine):
    runner: LoopRunner
    steps = 0
    seen: Counter[str] = Counter()

    def __init__(self) -> None:
        super().__init__()
        self.book = self.runner.run(make_book(self.runner.db))
        self.oracle = Oracle()
        for name, spec in SPECS.items():
            self.oracle.accounts[self.book[name]] = Acct(
                spec.currency,
                spec.debits_must_not_exceed_credits,
                spec.credits_must_not_exceed_debits,
            )
        self.n = 0
        self.batches: list[list[Transfer]] = []

    def account(self, name: str) -> str:
        return "la_missing" if name == "missing" else self.book[name]

    def new_id(self) -> str:
        self.n += 1
        return f"t{self.n}"

    def post(self, batch: list[Transfer], sequential: bool) -> list[str]:
        now = clock.now().timestamp()
        expected = self.oracle.post(batch, now)
        results = self.runner.run(
            ledger.post_transfers(
                self.runner.db, Batch(self.book.merchant_id, False, batch), sequential=sequential
            )
        )
        got = [r.result.value for r in results]
        LedgerMachine.steps += 1
        LedgerMachine.seen.update(got)
        assert got == expected, (batch, got, expected)
        self.oracle.finish_batch(batch, expected)
        for r in results:
            assert (r.timestamp is not None) == (r.result.value == "ok")
        self.batches.append(batch)
        return got

    def transfer(self, data: Any) -> Transfer:
        kind = data.draw(
            st.sampled_from(["single"] * 4 + ["pending"] * 2 + ["post", "void", "retry", "invalid"])
        )
        known = list(self.oracle.transfers)
        pendings = [k for k, t in self.oracle.transfers.items() if t.flags & 2]
        amount = data.draw(st.integers(1, 400))
        names = st.sampled_from(["bank", "wallet", "wallet2", "credit_line", "fees"] * 6 + NAMES)
        debit, credit = data.draw(names), data.draw(names)
        currency = "eur" if "eur" in (debit, credit) else "usd"
        if data.draw(st.integers(0, 20)) == 0:
            currency = "eur" if currency == "usd" else "usd"
        if kind == "single":
            return Transfer.single(
                self.new_id(), self.account(debit), self.account(credit), amount, currency, "c"
            )
        if kind == "pending":
            return Transfer.pending(
                self.new_id(),
                self.account(debit),
                self.account(credit),
                amount,
                currency,
                "hold",
                timeout=data.draw(st.sampled_from(TIMEOUTS)),
            )
        if kind in ("post", "void"):
            target = data.draw(st.sampled_from(pendings)) if pendings else "nope"
            if kind == "void":
                return Transfer.void(self.new_id(), target)
            part = data.draw(st.one_of(st.none(), st.integers(1, 450)))
            if data.draw(st.booleans()) and target in self.oracle.transfers:
                # Name the pending transfer's accounts (right or wrong) as a caller might.
                t = self.oracle.transfers[target]
                return replace(
                    Transfer.post(self.new_id(), target, part),
                    debit_account_id=t.dr if data.draw(st.booleans()) else self.book["bank"],
                    code=data.draw(st.sampled_from([t.code, "x"])),
                )
            return Transfer.post(self.new_id(), target, part)
        if kind == "retry" and known:
            old = self.oracle.transfers[data.draw(st.sampled_from(known))]
            tid = next(k for k, v in self.oracle.transfers.items() if v is old)
            same = Transfer(
                tid,
                None if old.flags & 12 else old.dr,
                None if old.flags & 12 else old.cr,
                None if old.flags & 12 else old.amount,
                None if old.flags & 12 else old.currency,
                None if old.flags & 12 else old.code,
                old.flags,
                old.pending_id,
                old.timeout,
                old.journal,
                old.metadata,
            )
            change = data.draw(st.sampled_from(["none", "amount", "code", "metadata", "flags"]))
            if change == "amount":
                return replace(same, amount=(old.amount + 1))
            if change == "code":
                return replace(same, code="other")
            if change == "metadata":
                return replace(same, metadata={"k": "v"})
            if change == "flags":
                return replace(same, flags=same.flags ^ LINKED)
            return same
        # Invalid requests of several kinds.
        bad = data.draw(st.sampled_from(["amount", "same", "timeout", "empty", "flags"]))
        tid = self.new_id()
        a, b = self.book["bank"], self.book["wallet"]
        if bad == "amount":
            return Transfer.single(tid, a, b, data.draw(st.sampled_from([0, -3])), "usd", "c")
        if bad == "same":
            return Transfer.single(tid, a, a, 5, "usd", "c")
        if bad == "timeout":
            return replace(Transfer.single(tid, a, b, 5, "usd", "c"), timeout=10)
        if bad == "empty":
            return Transfer.single(tid, a, b, 5, "usd", "")
        return replace(Transfer.single(tid, a, b, 5, "usd", "c"), flags=2 | 4)

    @rule(data=st.data(), sequential=st.booleans())
    def post_batch(self, data: Any, sequential: bool) -> None:
        size = data.draw(st.integers(1, 6))
        batch: list[Transfer] = []
        while len(batch) < size:
            group = data.draw(st.sampled_from(["one", "one", "linked", "journal"]))
            if group == "one":
                batch.append(self.transfer(data))
            else:
                members = [self.transfer(data) for _ in range(data.draw(st.integers(2, 3)))]
                if group == "journal":
                    jid = data.draw(
                        st.sampled_from([f"j{self.new_id()}", *sorted(self.oracle.journals)])
                    )
                    batch.extend(journal(jid, members))
                else:
                    batch.extend(t.with_link(i < len(members) - 1) for i, t in enumerate(members))
        if data.draw(st.integers(0, 15)) == 0:
            batch[-1] = batch[-1].with_link(True)  # a chain left open
        self.post(batch, sequential)

    @rule(data=st.data(), sequential=st.booleans())
    def fund(self, data: Any, sequential: bool) -> None:
        """Keep limited accounts funded so more transfers succeed."""
        target = data.draw(st.sampled_from(["wallet", "wallet2"]))
        self.post(
            [
                Transfer.single(
                    self.new_id(), self.book["bank"], self.book[target], 1000, "usd", "fund"
                ),
                Transfer.single(
                    self.new_id(), self.book["credit_line"], self.book["bank"], 500, "usd", "l"
                ),
            ],
            sequential,
        )

    @rule(data=st.data(), sequential=st.booleans())
    def hold_everything(self, data: Any, sequential: bool) -> None:
        """Reserve all that a limited account holds, then try to spend from it: pending
        amounts count against the limit."""
        w = self.oracle.accounts[self.book["wallet"]]
        free = w.cp - w.dp - w.dpend
        batch = [
            Transfer.single(self.new_id(), self.book["wallet"], self.book["bank"], 1, "usd", "x")
        ]
        if free > 0:
            batch.insert(
                0,
                Transfer.pending(
                    self.new_id(),
                    self.book["wallet"],
                    self.book["fees"],
                    free,
                    "usd",
                    "hold",
                    timeout=data.draw(st.sampled_from(TIMEOUTS)),
                ),
            )
        self.post(batch, sequential)

    @precondition(lambda self: bool(self.batches))
    @rule(data=st.data(), sequential=st.booleans())
    def repeat_batch(self, data: Any, sequential: bool) -> None:
        """A client retrying a whole earlier request."""
        self.post(data.draw(st.sampled_from(self.batches)), sequential)

    @rule(name=st.sampled_from(["wallet2", "credit_line"]))
    def close(self, name: str) -> None:
        if self.oracle.accounts[self.book[name]].closed:
            return
        self.runner.run(
            ledger.close_account(self.runner.db, self.book.merchant_id, self.book[name])
        )
        self.oracle.accounts[self.book[name]].closed = True

    @rule()
    def time_passes(self) -> None:
        clock.advance(100)
        now = clock.now().timestamp()
        due = [
            tid
            for tid, t in self.oracle.transfers.items()
            if t.flags & 2
            and t.timeout > 0
            and tid not in self.oracle.resolution
            and t.created_at + t.timeout <= now
        ]
        voids = [
            Transfer(expiry_id(p), None, None, None, None, None, VOID_PENDING | EXPIRE, p)
            for p in due
        ]
        expected = self.oracle.post(voids, now) if voids else []
        voided = self.runner.run(
            ledger.void_expired_pending(self.runner.db, merchant_id=self.book.merchant_id)
        )
        assert voided == expected.count("ok") == len(due)

    @invariant()
    def balances_match_the_oracle(self) -> None:
        accounts = self.runner.run(
            ledger.get_accounts(self.runner.db, self.book.merchant_id, list(self.book.ids.values()))
        )
        for aid, acct in accounts.items():
            want = self.oracle.accounts[aid]
            b = acct.balance
            got = (b.debits_posted, b.credits_posted, b.debits_pending, b.credits_pending)
            assert got == (want.dp, want.cp, want.dpend, want.cpend), aid
            assert acct.closed == want.closed

    @invariant()
    def ledger_verifies(self) -> None:
        report = self.runner.run(ledger.verify(self.runner.db, self.book.merchant_id))
        assert report.ok, report.problems
        for c in report.currencies:
            assert c["debits_posted"] == c["credits_posted"]
            assert c["debits_pending"] == c["credits_pending"]


@pytest.fixture
def runner(database_url: str):
    r = LoopRunner(database_url)
    yield r
    r.close()
    clock.reset()


def test_ledger_against_the_oracle(runner: LoopRunner) -> None:
    LedgerMachine.runner = runner
    LedgerMachine.steps = 0
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=250,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    print("STEPS", LedgerMachine.steps, LedgerMachine.seen)
    assert LedgerMachine.steps > 100
