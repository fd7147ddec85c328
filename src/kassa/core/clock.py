"""An injectable clock: everything that reads "now" reads it here, so tests can move time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_offset_seconds: float = 0.0


def now() -> datetime:
    """The current time, shifted by any offset a test or operator applied."""
    return datetime.fromtimestamp(time.time() + _offset_seconds, tz=UTC)


def timestamp() -> int:
    """Unix seconds, as Stripe objects carry them in ``created``."""
    return int(time.time() + _offset_seconds)


def unix_ms() -> int:
    """Unix milliseconds; the time part of sortable ids."""
    return int((time.time() + _offset_seconds) * 1000)


def advance(seconds: float) -> None:
    """Move this process's clock forward (tests only ever move it forward)."""
    global _offset_seconds
    _offset_seconds += seconds


def reset() -> None:
    global _offset_seconds
    _offset_seconds = 0.0
