"""A posting process for the crash test: posts batches of journal entries forever and prints
``J <journal id>`` for each entry once its batch has committed (an acknowledgement).

    python -m tests.ledger.crash_poster DSN MERCHANT BANK WALLET FEES FIRST_BATCH
"""

from __future__ import annotations

import asyncio
import sys

from kassa.core.db import Database
from kassa.ledger import service as ledger
from kassa.ledger.model import Batch, Transfer, journal

ENTRIES_PER_BATCH = 20


def entries(batch_no: int, bank: str, wallet: str, fees: str) -> list[Transfer]:
    transfers: list[Transfer] = []
    for e in range(ENTRIES_PER_BATCH):
        jid = f"crash:{batch_no}:{e}"
        transfers += journal(
            jid,
            [
                Transfer.single(f"{jid}:in", bank, wallet, 100 + e, "usd", "capture"),
                Transfer.single(f"{jid}:fee", wallet, fees, 3, "usd", "fee"),
                Transfer.pending(f"{jid}:hold", wallet, bank, 7, "usd", "hold"),
            ],
        )
    return transfers


async def main(dsn: str, merchant: str, bank: str, wallet: str, fees: str, first: int) -> None:
    db = await Database.connect(dsn, 1, 2)
    n = first
    while True:
        results = await ledger.post_transfers(
            db, Batch(merchant, False, entries(n, bank, wallet, fees))
        )
        if not all(r.succeeded for r in results):
            raise SystemExit(f"batch {n} failed: {results}")
        for e in range(ENTRIES_PER_BATCH):
            sys.stdout.write(f"J crash:{n}:{e}\n")
        sys.stdout.flush()
        n += 1


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], a[3], a[4], int(a[5])))
