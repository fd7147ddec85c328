"""Outbound notifications: signed, at-least-once, retried with backoff in world time.

A service hands :meth:`WebhookSender.emit` an event; the service's :class:`WebhookFormat`
turns a batch of events into a signed HTTP body. A delivery that is not acknowledged is
retried after 1, 2, 4 … minutes (at most 6 hours apart) for 3 days. Deliveries to one URL
go out one at a time, in order; a failed one is retried later without holding back the rest,
so order holds unless a delivery fails or reordering is injected. Faults can drop an attempt
(it is then retried like a failure), send it twice, or hold new events back by a random
delay so that they overtake each other.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import httpx
import orjson

from kassa.sandbox.clock import DAY, Scheduler, iso
from kassa.sandbox.faults import Faults
from kassa.sandbox.signing import timestamped_signature

log = logging.getLogger("kassa.sandbox.webhooks")

RETRY_FOR_S = 3 * DAY
MAX_BACKOFF_S = 6 * 3600.0
DELIVERY_TIMEOUT_S = 5.0
LOG_SIZE = 10_000


_Event = tuple[str, Mapping[str, Any]]  # (event id, event)


def backoff_s(failures: int) -> float:
    """Return the wait before the next attempt after ``failures`` failed ones."""
    factor: int = 2 ** max(0, failures - 1)
    return min(60.0 * factor, MAX_BACKOFF_S)


class WebhookFormat(Protocol):
    """How one service encodes, signs and expects acknowledgement of its notifications."""

    max_batch: int

    def encode(
        self, events: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[bytes, dict[str, str]]:
        """Return the body and headers (signature included) for a batch of events."""

    def accepted(self, status: int, body: bytes) -> bool:
        """Return True if the receiver's answer acknowledges the delivery."""


@dataclass
class Delivery:
    """One batch of events on its way to one URL, with its attempt history."""

    id: str
    url: str
    event_ids: list[str]
    events: list[Mapping[str, Any]]
    created_at: float
    status: str = "pending"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    next_attempt_at: float | None = None

    def failures(self) -> int:
        """Return the number of attempts that were not acknowledged (duplicates aside)."""
        return sum(1 for a in self.attempts if not a["duplicate"] and a["result"] != "delivered")

    def to_json(self) -> dict[str, Any]:
        """Return the delivery as the admin endpoint shows it."""
        return {
            "id": self.id,
            "url": self.url,
            "event_ids": self.event_ids,
            "status": self.status,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_attempt_at) if self.next_attempt_at else None,
            "attempts": self.attempts,
        }


class WebhookSender:
    """Delivers one service's notifications to its configured URL.

    Events wait in a per-URL lane; one worker per URL sends them in order, batching up to
    the format's ``max_batch`` events that are waiting together. A retry rejoins the lane
    when its backoff ends.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        faults: Faults,
        fmt: WebhookFormat,
        client: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.url: str | None = None
        self._scheduler = scheduler
        self._clock = scheduler.clock
        self._faults = faults
        self._format = fmt
        self._client = client
        self._outbox: list[tuple[float, int, str, _Event]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._log: deque[Delivery] = deque(maxlen=LOG_SIZE)
        self._lanes: dict[str, deque[_Event | Delivery]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    @property
    def enabled(self) -> bool:
        """True when a URL is configured (without one, events are not even built)."""
        return self.url is not None

    def emit(self, event_id: str, event: Mapping[str, Any]) -> None:
        """Queue an event for the URL configured now; it is delivered at least once."""
        if self.url is None:
            return
        due = self._clock.now() + self._faults.webhook_delay_s()
        heapq.heappush(self._outbox, (due, next(self._seq), self.url, (event_id, event)))
        self._scheduler.at(due, self._release, "webhook release")

    def _release(self) -> None:
        now = self._clock.now()
        while self._outbox and self._outbox[0][0] <= now:
            _, _, url, event = heapq.heappop(self._outbox)
            self._enqueue(url, event)

    def _enqueue(self, url: str, item: _Event | Delivery) -> None:
        self._lanes.setdefault(url, deque()).append(item)
        if url not in self._workers:
            self._workers[url] = asyncio.get_running_loop().create_task(self._drain(url))

    async def _drain(self, url: str) -> None:
        lane = self._lanes[url]
        try:
            while lane:
                head = lane.popleft()
                if isinstance(head, Delivery):
                    delivery = head
                else:
                    batch = [head]
                    while (
                        lane
                        and not isinstance(lane[0], Delivery)
                        and len(batch) < self._format.max_batch
                    ):
                        batch.append(cast(_Event, lane.popleft()))
                    delivery = Delivery(
                        id=f"whd_{next(self._ids)}",
                        url=url,
                        event_ids=[e[0] for e in batch],
                        events=[e[1] for e in batch],
                        created_at=self._clock.now(),
                    )
                    self._log.append(delivery)
                await self._attempt(delivery)
        finally:
            del self._workers[url]

    async def _attempt(self, delivery: Delivery) -> None:
        delivery.next_attempt_at = None
        fate = self._faults.webhook_fate()
        if fate.drop:
            delivery.attempts.append(
                {"at": iso(self._clock.now()), "result": "dropped", "duplicate": False}
            )
            self._retry_later(delivery)
            return
        if await self._post(delivery, False):
            delivery.status = "delivered"
        else:
            self._retry_later(delivery)
        if fate.duplicate:
            await self._post(delivery, True)

    async def _post(self, delivery: Delivery, duplicate: bool) -> bool:
        now = self._clock.now()
        body, headers = self._format.encode(delivery.events, now)
        try:
            reply = await self._client().post(
                delivery.url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_S
            )
            ok = self._format.accepted(reply.status_code, reply.content)
            result = "delivered" if ok else f"http {reply.status_code}"
        except httpx.HTTPError as e:
            ok, result = False, f"error: {type(e).__name__}"
        delivery.attempts.append({"at": iso(now), "result": result, "duplicate": duplicate})
        return ok

    def _retry_later(self, delivery: Delivery) -> None:
        now = self._clock.now()
        if now - delivery.created_at >= RETRY_FOR_S:
            delivery.status = "failed"
            return
        delivery.next_attempt_at = now + backoff_s(delivery.failures())
        self._scheduler.at(
            delivery.next_attempt_at,
            lambda: self._enqueue(delivery.url, delivery),
            "webhook retry",
        )

    def deliveries(self) -> list[dict[str, Any]]:
        """Return the delivery log, oldest first."""
        return [d.to_json() for d in self._log]

    async def close(self) -> None:
        """Abandon deliveries in flight."""
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


class SignedJsonFormat:
    """One JSON event per request, signed in a ``t=<unix>,v1=<hex>`` header; 2xx = accepted."""

    max_batch = 1

    def __init__(self, header: str, secret: str) -> None:
        self.header = header
        self.secret = secret

    def encode(
        self, events: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[bytes, dict[str, str]]:
        """Return the event as JSON with its signature header."""
        body = orjson.dumps(events[0])
        return body, {
            "content-type": "application/json",
            self.header: timestamped_signature(self.secret, body, int(now)),
        }

    def accepted(self, status: int, body: bytes) -> bool:
        """Any 2xx acknowledges the event."""
        return 200 <= status < 300
