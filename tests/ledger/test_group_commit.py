"""Group commit: concurrent callers share commits and get the results of posting one after
another."""

from __future__ import annotations

import asyncio

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer
from tests.ledger.conftest import Book


async def test_concurrent_callers_share_commits(db: Database, book: Book):
    committer = ledger.GroupCommitter(db)

    async def one(i: int) -> list[str]:
        transfers = [Transfer.single(f"g{i}", book["bank"], book["fees"], 1, "usd", "x")]
        if i % 10 == 0:
            # The same id as another caller's: whichever goes second sees it.
            transfers.append(Transfer.single("g-dup", book["bank"], book["fees"], 1, "usd", "x"))
        if i == 7:
            transfers.append(
                Transfer.single("g-open", book["bank"], book["fees"], 1, "usd", "x").with_link(True)
            )
        results = await committer.post(Batch(book.merchant_id, False, transfers))
        return [r.result.value for r in results]

    outcomes = await asyncio.gather(*(one(i) for i in range(50)))
    assert all(o[0] == "ok" for o in outcomes if len(o) == 1)
    dups = [o[1] for i, o in enumerate(outcomes) if i % 10 == 0]
    assert sorted(dups) == ["exists"] * 4 + ["ok"]
    # An open chain never links into another caller's transfers.
    assert outcomes[7] == ["ok", "linked_event_chain_open"]
    fees = await ledger.get_account(db, book.merchant_id, book["fees"])
    assert fees.balance.posted == 51
    assert (await ledger.verify(db, book.merchant_id)).ok
