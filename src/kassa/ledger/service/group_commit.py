"""Group commit: concurrent callers' transfers share one batch and one commit.

A single transfer per transaction is bound by commit latency, as pgbench is. Here the first
caller for a (merchant, mode) posts at once; callers arriving while that batch is in flight
queue up and go together in the next one. Under load batches grow by themselves, with no timer
adding latency when the ledger is idle. Each caller's transfers stay contiguous and are
evaluated in arrival order, so the results are those of posting the requests one after another.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from kassa.core.db import Database
from kassa.ledger.model import Batch, Transfer, TransferResult
from kassa.ledger.service.posting import post_transfers


@dataclass
class _Request:
    transfers: list[Transfer]
    future: asyncio.Future[list[TransferResult]]


@dataclass
class _Lane:
    queue: list[_Request] = field(default_factory=list)
    in_flight: int = 0


class GroupCommitter:
    """Posts concurrent batches of one merchant together. One per process; ``post`` is the
    whole interface. ``max_in_flight`` batches per merchant run at once (they share hot rows,
    so more rarely helps); ``max_batch`` bounds one commit."""

    def __init__(self, db: Database, *, max_batch: int = 2000, max_in_flight: int = 2) -> None:
        self.db = db
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._lanes: dict[tuple[str, bool], _Lane] = {}
        # The event loop keeps only weak references to tasks: hold them until they finish.
        self._tasks: set[asyncio.Task[None]] = set()

    async def post(self, batch: Batch) -> list[TransferResult]:
        """Post ``batch``, possibly in one commit with other callers' transfers; returns after
        that commit, with the same results as ``post_transfers``."""
        transfers = list(batch.transfers)
        if not transfers:
            return []
        if transfers[-1].linked:
            # An open chain would link into the next caller's transfers: post it on its own.
            return await post_transfers(self.db, batch)
        key = (batch.merchant_id, batch.livemode)
        lane = self._lanes.setdefault(key, _Lane())
        future: asyncio.Future[list[TransferResult]] = asyncio.get_running_loop().create_future()
        lane.queue.append(_Request(transfers, future))
        if lane.in_flight < self.max_in_flight:
            self._start(key, lane)
        return await future

    def _start(self, key: tuple[str, bool], lane: _Lane) -> None:
        taken: list[_Request] = []
        size = 0
        while lane.queue and (not taken or size + len(lane.queue[0].transfers) <= self.max_batch):
            request = lane.queue.pop(0)
            taken.append(request)
            size += len(request.transfers)
        lane.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._flush(key, lane, taken))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, key: tuple[str, bool], lane: _Lane, taken: list[_Request]) -> None:
        try:
            transfers = [t for r in taken for t in r.transfers]
            results = await post_transfers(self.db, Batch(key[0], key[1], transfers))
            start = 0
            for request in taken:
                end = start + len(request.transfers)
                if not request.future.done():
                    request.future.set_result(results[start:end])
                start = end
        except BaseException as exc:
            for request in taken:
                if not request.future.done():
                    request.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            lane.in_flight -= 1
            if lane.queue:
                self._start(key, lane)
            elif lane.in_flight == 0:
                self._lanes.pop(key, None)
