"""The CVC's only home: this process's memory, from tokenization until the first authorisation.

PCI DSS forbids storing the card verification code after authorisation, even encrypted, so it
never reaches the database, a log, an event or an idempotency record. It waits here, keyed by
payment method id, for at most ``TTL_SECONDS``; the first ``take`` removes it. With several API
processes only the one that tokenized the card holds its CVC (see ``docs/vault.md``)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from kassa.core import clock

TTL_SECONDS = 600
MAX_ENTRIES = 100_000


class CvcStore:
    """CVCs by payment method id, each kept for ``ttl`` seconds at most.

    Every entry lives equally long, so insertion order is expiry order: expired entries are
    dropped from the front on every write, and a full store (a flood of tokenizations) drops
    its oldest entries rather than growing without bound."""

    def __init__(self, ttl_seconds: int = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self._ttl_ms = ttl_seconds * 1000
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[str, int]] = OrderedDict()
        # The API runs on one event loop, but the payments domain may call from a thread.
        self._lock = threading.Lock()

    def put(self, pm_id: str, cvc: str) -> None:
        now = clock.unix_ms()
        with self._lock:
            self._purge(now)
            self._entries[pm_id] = (cvc, now + self._ttl_ms)
            self._entries.move_to_end(pm_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def take(self, pm_id: str) -> str | None:
        """Remove and return the CVC of ``pm_id``, or None if it expired or was taken."""
        with self._lock:
            entry = self._entries.pop(pm_id, None)
        if entry is None or entry[1] <= clock.unix_ms():
            return None
        return entry[0]

    def holds(self, pm_id: str) -> bool:
        """Whether a live CVC waits for ``pm_id`` (without taking it)."""
        with self._lock:
            entry = self._entries.get(pm_id)
        return entry is not None and entry[1] > clock.unix_ms()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _purge(self, now: int) -> None:
        while self._entries:
            _, (_, expires) = next(iter(self._entries.items()))
            if expires > now:
                return
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        # Never the values: a store printed into a traceback must not leak codes.
        return f"<CvcStore {len(self._entries)} entries>"


store = CvcStore()
# A forked worker must not carry its parent's codes (nor could it serve them consistently).
os.register_at_fork(after_in_child=store.clear)
