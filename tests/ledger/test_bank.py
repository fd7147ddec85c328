"""A Jepsen-style bank test: concurrent writers move money among limited accounts (one of them
hot) with single, linked, pending/post/void transfers and racing retries, while readers check
every snapshot: money is conserved, no account is overdrawn, debits equal credits."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import AccountSpec, Batch, Transfer, linked
from tests.factories import new_merchant

WRITERS = 16
READERS = 2
ACCOUNTS = 10
SECONDS = 10.0
INITIAL = 10_000

pytestmark = pytest.mark.slow


async def test_bank(db: Database) -> None:
    merchant_id = str((await new_merchant(db)).merchant["id"])
    specs = [
        AccountSpec("customer", f"acct{i}", "usd", debits_must_not_exceed_credits=True)
        for i in range(ACCOUNTS)
    ]
    accounts = await ledger.open_accounts(db, merchant_id, False, specs)
    [mint] = await ledger.open_accounts(
        db, merchant_id, False, [AccountSpec("external:mint", "settlement", "usd")]
    )
    funding = [
        Transfer.single(f"fund{i}", mint, a, INITIAL, "usd", "fund") for i, a in enumerate(accounts)
    ]
    assert all(
        r.succeeded for r in await ledger.post_transfers(db, Batch(merchant_id, False, funding))
    )
    hot = accounts[0]
    committer = ledger.GroupCommitter(db)
    pendings: list[str] = []
    deadline = time.monotonic() + SECONDS
    outcomes: dict[str, int] = {}
    reads = 0

    def pick(rng: random.Random) -> tuple[str, str]:
        a = hot if rng.random() < 0.5 else rng.choice(accounts)
        b = rng.choice(accounts)
        while b == a:
            b = rng.choice(accounts)
        return (a, b) if rng.random() < 0.5 else (b, a)

    async def writer(n: int) -> None:
        rng = random.Random(n)
        k = 0
        while time.monotonic() < deadline:
            k += 1
            tid = f"w{n}:{k}"
            kind = rng.choice(["single", "single", "linked", "pending", "resolve", "race"])
            a, b = pick(rng)
            amount = rng.randint(1, 3000)
            if kind == "single":
                batch = [Transfer.single(tid, a, b, amount, "usd", "move")]
            elif kind == "linked":
                c = rng.choice([x for x in accounts if x != b])
                batch = linked(
                    [
                        Transfer.single(f"{tid}a", a, b, amount, "usd", "move"),
                        Transfer.single(f"{tid}b", b, c, amount // 2 + 1, "usd", "move"),
                    ]
                )
            elif kind == "pending":
                batch = [Transfer.pending(tid, a, b, amount, "usd", "hold")]
                pendings.append(tid)
            elif kind == "resolve" and pendings:
                target = rng.choice(pendings[-50:])
                batch = [
                    Transfer.post(f"post:{target}", target, rng.choice([None, 1]))
                    if rng.random() < 0.5
                    else Transfer.void(f"void:{target}", target)
                ]
            else:
                # Racing writers submitting the same id, sometimes with other fields.
                shared = f"shared:{rng.randint(0, 200)}"
                batch = [
                    Transfer.single(
                        shared, accounts[1], accounts[2], rng.choice([5, 6]), "usd", "r"
                    )
                ]
            request = Batch(merchant_id, False, batch)
            if n % 2:
                results = await committer.post(request)
            else:
                results = await ledger.post_transfers(db, request, sequential=n % 4 == 0)
            for r in results:
                outcomes[r.result.value] = outcomes.get(r.result.value, 0) + 1

    async def reader() -> None:
        nonlocal reads
        while time.monotonic() < deadline:
            totals = await ledger.totals(db, merchant_id, False)
            customers = [b for (owner, _, _), b in totals.items() if owner == "customer"]
            assert sum(b.posted for b in customers) == ACCOUNTS * INITIAL
            assert all(b.available >= 0 for b in customers)
            every = list(totals.values())
            assert sum(b.debits_posted for b in every) == sum(b.credits_posted for b in every)
            assert sum(b.debits_pending for b in every) == sum(b.credits_pending for b in every)
            reads += 1
            await asyncio.sleep(0.01)

    await asyncio.gather(*(writer(n) for n in range(WRITERS)), *(reader() for _ in range(READERS)))

    assert outcomes.get("ok", 0) > 500, outcomes
    assert outcomes.get("exceeds_credits", 0) > 0, outcomes
    assert reads > 50
    final = await ledger.get_accounts(db, merchant_id, accounts)
    assert sum(a.balance.posted for a in final.values()) == ACCOUNTS * INITIAL
    report = await ledger.verify(db, merchant_id)
    assert report.ok, report.problems
