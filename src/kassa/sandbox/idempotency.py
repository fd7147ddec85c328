"""Idempotency: a retried mutating call gets the first call's answer and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kassa.sandbox.clock import Clock
from kassa.sandbox.httpserver import Handler, Request, Response

KEY_TTL_S = 24 * 3600.0


class IdempotencyMismatch(Exception):
    """The key was first used with a different request."""


@dataclass(slots=True)
class _Entry:
    request: bytes
    response: Response
    stored_at: float


class IdempotencyStore:
    """Remembers the answer to each idempotency key for 24 hours of world time."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def replay(self, key: str, request: bytes) -> Response | None:
        """Return the stored answer for ``key``, or None if the key is new.

        ``request`` is the exact request (path and body) the key is bound to; a different
        request under the same key raises :class:`IdempotencyMismatch`.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.request != request:
            raise IdempotencyMismatch(key)
        return entry.response

    def remember(self, key: str, request: bytes, response: Response) -> None:
        """Store the answer given to the first request under ``key``."""
        self._entries[key] = _Entry(request, response, self._clock.now())

    def once(
        self,
        key: str,
        request: Request,
        produce: Callable[[], Response],
        mismatch: Callable[[], Response],
        mark_replay: Callable[[Response], Response],
    ) -> Response:
        """Answer ``request`` with ``produce()`` the first time ``key`` is seen, else replay.

        The key binds the path and exact body; another request under it gets ``mismatch()``.
        If ``produce`` raises ApiError (a request rejected by validation) nothing is stored,
        so the caller may fix the request and retry under the same key.
        """
        bound = request.path.encode() + b"\0" + request.body
        try:
            replay = self.replay(key, bound)
        except IdempotencyMismatch:
            return mismatch()
        if replay is not None:
            return mark_replay(replay)
        response = produce()
        self.remember(key, bound, response)
        return response

    def prune(self) -> int:
        """Forget keys older than 24 hours; return how many were dropped."""
        cutoff = self._clock.now() - KEY_TTL_S
        old = [k for k, e in self._entries.items() if e.stored_at < cutoff]
        for k in old:
            del self._entries[k]
        return len(old)


def idempotent(
    store: IdempotencyStore,
    header: str,
    handler: Handler,
    mismatch: Callable[[], Response],
    mark_replay: Callable[[Response], Response],
) -> Handler:
    """Wrap ``handler`` so a repeated ``header`` key replays the first answer (see ``once``)."""

    def run(request: Request, params: dict[str, str]) -> Response:
        key = request.headers.get(header)
        if key is None:
            return handler(request, params)
        return store.once(key, request, lambda: handler(request, params), mismatch, mark_replay)

    return run
