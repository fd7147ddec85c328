"""Authorisation outcomes over a sliding window, per (connector, card brand, card country):
what success-rate routing ranks by.

The window lives in the process that settles the attempts (each API or worker process keeps
its own); it is a routing hint, not a record, so losing it on a restart only means a few
payments of warm-up."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from kassa.core import clock

Key = tuple[str, str, str]


def _now() -> float:
    return clock.now().timestamp()


@dataclass(frozen=True, slots=True)
class Rate:
    """Successes over attempts in the window; ``rate`` is None below the minimum sample."""

    attempts: int
    successes: int
    rate: float | None


class SuccessWindow:
    """The last ``attempts`` outcomes per key, none older than ``seconds``."""

    def __init__(
        self,
        attempts: int = 200,
        seconds: float = 900.0,
        min_attempts: int = 10,
        now: Callable[[], float] = _now,
    ) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self.min_attempts = min_attempts
        self._now = now
        self._outcomes: dict[Key, deque[tuple[float, bool]]] = {}

    @staticmethod
    def key(connector: str, brand: str | None, country: str | None) -> Key:
        return (connector, (brand or "unknown").lower(), (country or "").upper())

    def record(self, connector: str, brand: str | None, country: str | None, ok: bool) -> None:
        """Add one authorisation outcome (``ok``: authorised or captured)."""
        key = self.key(connector, brand, country)
        outcomes = self._outcomes.get(key)
        if outcomes is None:
            outcomes = self._outcomes[key] = deque(maxlen=self.attempts)
        outcomes.append((self._now(), ok))

    def rate(self, connector: str, brand: str | None, country: str | None) -> Rate:
        """The success rate of ``connector`` for such cards, over the window."""
        outcomes = self._outcomes.get(self.key(connector, brand, country))
        if not outcomes:
            return Rate(0, 0, None)
        horizon = self._now() - self.seconds
        while outcomes and outcomes[0][0] < horizon:
            outcomes.popleft()
        n = len(outcomes)
        ok = sum(1 for _, success in outcomes if success)
        return Rate(n, ok, ok / n if n >= self.min_attempts else None)
