"""World time for the sandbox and a scheduler that runs what falls due.

Every service reads :class:`Clock` instead of the system time, so a test can jump ahead three
days and see the delayed returns, payouts, settlement files and webhook retries that fell due
in between, in the order they fell due.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

log = logging.getLogger("kassa.sandbox.clock")

DAY = 86_400.0


class Clock:
    """Unix time that runs with the wall clock but can be moved forward, never back."""

    def __init__(self) -> None:
        self._offset = 0.0
        # While the scheduler runs a job that fell due during an advance, time reads as the
        # job's due time, so records it writes carry the moment they "really" happened.
        self._pinned: float | None = None

    def now(self) -> float:
        """Return the current world time in unix seconds."""
        if self._pinned is not None:
            return self._pinned
        return time.time() + self._offset

    def today(self) -> date:
        """Return the current UTC date in world time."""
        return utc_date(self.now())

    @property
    def offset(self) -> float:
        """Seconds the world is ahead of the wall clock."""
        return self._offset

    def _advance_to(self, target: float) -> None:
        self._offset = max(self._offset, target - time.time())

    def _pin(self, at: float | None) -> None:
        self._pinned = at


def utc_date(ts: float) -> date:
    """Return the UTC calendar date of a unix timestamp."""
    return datetime.fromtimestamp(ts, UTC).date()


def iso(ts: float) -> str:
    """Format a unix timestamp as an ISO-8601 UTC string with seconds precision."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def start_of_day(d: date) -> float:
    """Return the unix timestamp of midnight UTC at the start of ``d``."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()


def next_midnight(ts: float) -> float:
    """Return the first UTC midnight strictly after ``ts``."""
    return start_of_day(utc_date(ts) + timedelta(days=1))


@dataclass(order=True)
class Job:
    """A callback due at a world time; cancel it by setting ``cancelled``."""

    due: float
    seq: int
    fn: Callable[[], object] = field(compare=False)
    label: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)


class Scheduler:
    """Runs callbacks at world times, in due order, on the event loop.

    Jobs are plain functions that change in-memory state; anything slow (an HTTP delivery)
    they start as a task. That keeps an advance of the clock a single, ordered sweep.
    """

    # An advance that keeps producing due jobs (a job re-scheduling itself at "now") must
    # still terminate.
    MAX_JOBS_PER_SWEEP = 1_000_000

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[Job] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.jobs_run = 0

    def at(self, due: float, fn: Callable[[], object], label: str = "") -> Job:
        """Schedule ``fn`` to run when world time reaches ``due``."""
        job = Job(due, next(self._seq), fn, label)
        heapq.heappush(self._heap, job)
        if self._heap[0] is job:
            self._wake.set()
        return job

    def after(self, delay_s: float, fn: Callable[[], object], label: str = "") -> Job:
        """Schedule ``fn`` to run ``delay_s`` world seconds from now."""
        return self.at(self.clock.now() + max(0.0, delay_s), fn, label)

    def pending(self) -> int:
        """Return how many jobs are waiting."""
        return sum(1 for j in self._heap if not j.cancelled)

    def advance(self, seconds: float) -> int:
        """Move world time forward and run every job that fell due; return how many ran."""
        target = self.clock.now() + max(0.0, seconds)
        ran = self._sweep(target)
        self.clock._advance_to(target)
        self._wake.set()
        return ran

    def run_due(self) -> int:
        """Run the jobs that are due at the current world time; return how many ran."""
        return self._sweep(self.clock.now())

    def _sweep(self, until: float) -> int:
        ran = 0
        while self._heap and self._heap[0].due <= until and ran < self.MAX_JOBS_PER_SWEEP:
            job = heapq.heappop(self._heap)
            if job.cancelled:
                continue
            self.clock._pin(max(job.due, self.clock.now()))
            try:
                job.fn()
            except Exception:
                log.exception("sandbox job %s failed", job.label or job.fn)
            finally:
                self.clock._pin(None)
            ran += 1
        self.jobs_run += ran
        return ran

    def start(self) -> None:
        """Start running due jobs in the background as wall time passes."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        """Stop the background runner."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self.run_due()
            self._wake.clear()
            timeout = None
            if self._heap:
                timeout = max(0.0, self._heap[0].due - self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
