"""Prefixed object ids (``cus_…``) that sort by creation time.

The body is a fixed-width base62 number: 48 bits of milliseconds then 80 random bits. Fixed
width plus an ASCII-ordered alphabet makes string order equal creation order, so list
pagination can be keyset pagination on the id alone (columns use ``COLLATE "C"``).
"""

from __future__ import annotations

import os
import threading

from kassa.core import clock

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WIDTH = 22  # 62**22 > 2**128


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


class _RandomPool:
    """Random bytes from the OS, fetched 4 KiB at a time: one syscall per ~400 ids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._pos + n > len(self._buf):
                self._buf, self._pos = os.urandom(4096), 0
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out


_random = _RandomPool()
# A forked child must not hand out the parent's buffered bytes again.
os.register_at_fork(after_in_child=lambda: globals().__setitem__("_random", _RandomPool()))


def randbits(bits: int) -> int:
    return int.from_bytes(_random.take((bits + 7) // 8)) >> (-bits % 8)


_last = 0


def new_id(prefix: str) -> str:
    """A new id such as ``cus_0Ab…``; ``prefix`` is given without the underscore.

    Within one process, ids made in the same millisecond still increase (as ULIDs do), so a
    list shows objects in the order they were made."""
    global _last
    n = (clock.unix_ms() << 80) | randbits(80)
    if n >> 80 == _last >> 80 and n <= _last:
        n = _last + 1
    _last = n
    return f"{prefix}_{_base62(n, _WIDTH)}"


def random_token(nbytes: int = 24) -> str:
    """A URL-safe random string drawn from the id alphabet (used in secrets and API keys)."""
    return _base62(randbits(nbytes * 8), (nbytes * 8 * 100 + 594) // 595)


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) > len(prefix) + 1
