"""Circuit breakers in front of each connector's authorisations, shared by every process.

Each process counts its own calls (consecutive failures and a sliding window of outcomes) and
touches PostgreSQL only when a breaker changes state: ``connector_breakers`` holds one row per
connector that ever opened. Processes read that table at most once per ``cache_s`` (one query
for all connectors), so a breaker another process opened takes effect here within about a
second, and a payment costs no write.

    closed ──failures──▶ open ──cool-down──▶ half_open ──probe ok──▶ closed
                          ▲                     │
                          └────probe failed─────┘

A half-open breaker admits ``probes`` requests across all processes: a process claims a probe
under the row's lock (``SELECT … FOR UPDATE``), so no more than ``probes`` run at once. A probe
whose process died is given up after ``probe_until`` and the slot can be claimed again.

What counts as a failure: the request could not be sent (``NotSent``) or its outcome is
unknown (timeouts, 5xx, resets). A decline, a 429 (honoured by waiting, see
``connectors/policy.py``) or a rejected request is the PSP answering, so it counts as
healthy."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from kassa.connectors import repository
from kassa.connectors.base import NotSent
from kassa.connectors.configuration import BreakerConfig
from kassa.core import clock, metrics
from kassa.core.db import Connection, Database

log = logging.getLogger(__name__)


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


GAUGE = {State.CLOSED: 0, State.OPEN: 1, State.HALF_OPEN: 2}


class BreakerOpen(NotSent):
    """The connector's breaker is open: the request was not sent, by design."""


@dataclass(frozen=True, slots=True)
class Shared:
    """One connector's row in ``connector_breakers``."""

    connector: str
    state: State = State.CLOSED
    opened_at: datetime | None = None
    retry_at: datetime | None = None  # open → half-open from then on
    probes_left: int = 0  # half-open: probe slots not yet claimed
    probe_until: datetime | None = None  # half-open: claimed probes are given up after this
    generation: int = 0  # bumped on every transition; a probe reports against its own
    reason: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Shared:
        return cls(**{**row, "state": State(row["state"])})

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "state": self.state.value,
            "opened_at": self.opened_at,
            "retry_at": self.retry_at,
            "probes_left": self.probes_left,
            "probe_until": self.probe_until,
            "generation": self.generation,
            "reason": self.reason,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Ticket:
    """Permission for one call; a probe reports back against its generation."""

    connector: str
    probe: bool = False
    generation: int = 0


# Pure transitions: (current row, now, config) → the new row, or None for "no change".


def claim_probe(
    s: Shared, now: datetime, config: BreakerConfig, probe_window: timedelta
) -> Shared | None:
    """Take one probe slot if the breaker is open past its cool-down or half-open with a slot
    left (or with stale claims: their processes died)."""
    if s.state is State.OPEN and s.retry_at is not None and s.retry_at <= now:
        return replace(
            s,
            state=State.HALF_OPEN,
            probes_left=config.probes - 1,
            probe_until=now + probe_window,
            generation=s.generation + 1,
            updated_at=now,
        )
    if s.state is State.HALF_OPEN:
        stale = s.probe_until is not None and s.probe_until < now
        left = config.probes if stale else s.probes_left
        if left > 0:
            return replace(s, probes_left=left - 1, probe_until=now + probe_window, updated_at=now)
    return None


def trip(s: Shared, now: datetime, config: BreakerConfig, reason: str) -> Shared | None:
    """Open a closed breaker (another process may have opened it already: no change)."""
    if s.state is not State.CLOSED:
        return None
    return _opened(s, now, config, reason)


def report_probe(
    s: Shared, ticket: Ticket, failed: bool, now: datetime, config: BreakerConfig, reason: str
) -> Shared | None:
    """A probe's result: success closes the breaker, failure opens it for another cool-down.
    A result for an older half-open period changes nothing."""
    if s.state is not State.HALF_OPEN or s.generation != ticket.generation:
        return None
    if failed:
        return _opened(s, now, config, f"probe failed: {reason}")
    return replace(
        s,
        state=State.CLOSED,
        opened_at=None,
        retry_at=None,
        probes_left=0,
        probe_until=None,
        generation=s.generation + 1,
        reason="probe succeeded",
        updated_at=now,
    )


def reset(s: Shared, now: datetime) -> Shared | None:
    """An operator closes the breaker by hand."""
    if s.state is State.CLOSED:
        return None
    return replace(
        s,
        state=State.CLOSED,
        opened_at=None,
        retry_at=None,
        probes_left=0,
        probe_until=None,
        generation=s.generation + 1,
        reason="reset by an operator",
        updated_at=now,
    )


def _opened(s: Shared, now: datetime, config: BreakerConfig, reason: str) -> Shared:
    return replace(
        s,
        state=State.OPEN,
        opened_at=now,
        retry_at=now + timedelta(seconds=config.cool_down_s),
        probes_left=0,
        probe_until=None,
        generation=s.generation + 1,
        reason=reason[:200],
        updated_at=now,
    )


# Storage.


async def read_all(conn: Connection) -> dict[str, Shared]:
    """Every breaker row (connectors without one are closed)."""
    return {r["connector"]: Shared.of(r) for r in await repository.breaker_rows(conn)}


async def _transition(
    db: Database, connector: str, change: Any, *args: Any
) -> tuple[Shared, Shared | None]:
    """Apply ``change(current, *args)`` under the row's lock; returns (before, after or None)."""
    async with db.transaction() as conn:
        before = Shared.of(await repository.lock_breaker(conn, connector))
        after: Shared | None = change(before, *args)
        if after is not None:
            await repository.update_breaker(conn, after.as_dict())
    if after is not None and after.state is not before.state:
        metrics.BREAKER_TRANSITIONS.labels(connector, before.state.value, after.state.value).inc()
        metrics.BREAKER_STATE.labels(connector).set(GAUGE[after.state])
        log.warning("breaker %s: %s → %s (%s)", connector, before.state, after.state, after.reason)
    return before, after


async def reset_breaker(db: Database, connector: str) -> bool:
    """Close a breaker by hand (``kassa connectors reset``); True if it was not closed."""
    _, after = await _transition(db, connector, lambda s: reset(s, clock.now()))
    return after is not None


class Breakers:
    """This process's breakers: local counts, a short-lived copy of the shared rows."""

    def __init__(
        self,
        db: Database,
        configs: Mapping[str, BreakerConfig],
        probe_windows: Mapping[str, float] | None = None,
    ) -> None:
        self._db = db
        self._configs = dict(configs)
        # A probe is given up (its slot freed) after its call could have timed out.
        self._probe_windows = {
            name: timedelta(seconds=(probe_windows or {}).get(name, 30.0) + 5.0)
            for name in self._configs
        }
        self._shared: dict[str, Shared] = {}
        self._read_at = float("-inf")
        self._consecutive: dict[str, int] = {}
        self._window: dict[str, deque[tuple[float, bool]]] = {}

    def config(self, connector: str) -> BreakerConfig:
        return self._configs.get(connector) or BreakerConfig()

    async def shared(self, connector: str) -> Shared:
        """The shared state, read again when this process's copy is older than ``cache_s``."""
        if time.monotonic() - self._read_at >= self.config(connector).cache_s:
            await self.refresh()
        return self._shared.get(connector) or Shared(connector)

    async def refresh(self) -> dict[str, Shared]:
        """Read every breaker's shared state now (also sets the state gauge)."""
        async with self._db.connection() as conn:
            self._shared = await read_all(conn)
        self._read_at = time.monotonic()
        for name in self._configs:
            state = self._shared.get(name, Shared(name)).state
            metrics.BREAKER_STATE.labels(name).set(GAUGE[state])
        return self._shared

    async def admit(self, connector: str) -> Ticket:
        """Permission to call ``connector``, or ``BreakerOpen`` (no call must be made)."""
        config = self.config(connector)
        if not config.enabled:
            return Ticket(connector)
        s = await self.shared(connector)
        if s.state is State.CLOSED:
            return Ticket(connector)
        now = clock.now()
        if s.state is State.OPEN and s.retry_at is not None and s.retry_at > now:
            raise BreakerOpen(f"{connector}: circuit breaker open until {s.retry_at.isoformat()}")
        _, after = await _transition(
            self._db, connector, claim_probe, now, config, self._probe_windows[connector]
        )
        if after is None:
            self._remember(connector, None)
            raise BreakerOpen(f"{connector}: circuit breaker half-open, probes in flight")
        self._remember(connector, after)
        return Ticket(connector, probe=True, generation=after.generation)

    async def record(self, ticket: Ticket, failed: bool, reason: str = "") -> None:
        """The result of an admitted call: a failure or success of the PSP, not of the card."""
        name = ticket.connector
        config = self.config(name)
        if not config.enabled:
            return
        now = clock.now()
        if ticket.probe:
            self._forget_counts(name)
            _, after = await _transition(
                self._db, name, report_probe, ticket, failed, now, config, reason
            )
            self._remember(name, after)
            return
        if not failed:
            self._consecutive[name] = 0
            self._note(name, False)
            return
        self._consecutive[name] = self._consecutive.get(name, 0) + 1
        window = self._note(name, True)
        failures = sum(1 for _, bad in window if bad)
        why = None
        if self._consecutive[name] >= config.failure_threshold:
            why = f"{self._consecutive[name]} consecutive failures, last: {reason}"
        elif len(window) >= config.min_calls and failures / len(window) >= config.failure_ratio:
            why = f"{failures} of the last {len(window)} calls failed, last: {reason}"
        if why is None:
            return
        self._forget_counts(name)
        _, after = await _transition(self._db, name, trip, now, config, why)
        self._remember(name, after)

    def _note(self, name: str, failed: bool) -> deque[tuple[float, bool]]:
        window = self._window.setdefault(name, deque())
        t = time.monotonic()
        window.append((t, failed))
        horizon = t - self.config(name).window_s
        while window and window[0][0] < horizon:
            window.popleft()
        return window

    def _forget_counts(self, name: str) -> None:
        self._consecutive[name] = 0
        self._window.pop(name, None)

    def _remember(self, name: str, after: Shared | None) -> None:
        if after is not None:
            self._shared[name] = after
        else:
            # Someone else changed it: read the table again on the next call.
            self._read_at = float("-inf")
