"""Settlement: the money movements an acquirer pays out, and its daily settlement files.

Every successful capture, refund, chargeback and chargeback reversal is booked as a
:class:`LedgerItem` that settles ``settle_days`` after the day it was booked (captures of the
"bypass pending" test card settle the same day). When a UTC day ends, the items settling that
day go into that day's report, in the acquirer's own CSV columns. Discrepancies can be
injected into the next report: a missing row, a wrong amount, or a row nobody knows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from kassa.sandbox.clock import Clock, Scheduler, iso, next_midnight, utc_date

DISCREPANCY_KINDS = ("missing_row", "amount_mismatch", "unknown_row")


@dataclass(slots=True)
class LedgerItem:
    """One settled money movement; ``gross`` is signed from the merchant's side."""

    kind: str  # capture | refund | chargeback | chargeback_reversal
    payment_id: str
    item_id: str  # the capture/refund/dispute id
    merchant_reference: str
    currency: str
    gross: int
    fee: int
    booked_at: float
    settles_on: date
    brand: str

    @property
    def net(self) -> int:
        """What the merchant receives for this item (negative = pays)."""
        return self.gross - self.fee

    def to_json(self) -> dict[str, Any]:
        """Return the item as admin records show it."""
        return {
            "kind": self.kind,
            "payment_id": self.payment_id,
            "item_id": self.item_id,
            "merchant_reference": self.merchant_reference,
            "currency": self.currency,
            "gross": self.gross,
            "fee": self.fee,
            "net": self.net,
            "booked_at": iso(self.booked_at),
            "settles_on": self.settles_on.isoformat(),
        }


@dataclass
class SettlementReport:
    """One day's settlement file as the acquirer publishes it."""

    day: date
    batch: int
    rows: list[LedgerItem]
    created_at: float
    csv: bytes = b""
    injected: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Return the report's metadata (admin view, including what was tampered with)."""
        return {
            "date": self.day.isoformat(),
            "batch": self.batch,
            "rows": len(self.rows),
            "created_at": iso(self.created_at),
            "injected": self.injected,
        }


class SettlementBook:
    """Books settled items and closes each UTC day into a report."""

    def __init__(
        self,
        clock: Clock,
        scheduler: Scheduler,
        rng: random.Random,
        render: Callable[[SettlementReport], bytes],
        published: Callable[[SettlementReport], None],
        unknown_id: Callable[[], str],
    ) -> None:
        self._clock = clock
        self._scheduler = scheduler
        self._rng = rng
        self._render = render
        self._published = published
        self._unknown_id = unknown_id
        self._items: dict[date, list[LedgerItem]] = {}
        self.reports: dict[date, SettlementReport] = {}
        self.pending_discrepancies: dict[str, int] = dict.fromkeys(DISCREPANCY_KINDS, 0)
        self._batches = 0

    def book(self, item: LedgerItem) -> None:
        """Record an item; it appears in the report of the day it settles on."""
        self._items.setdefault(item.settles_on, []).append(item)

    def start(self) -> None:
        """Schedule the first end-of-day close."""
        self._scheduler.at(next_midnight(self._clock.now()), self._close, "settlement close")

    def _close(self) -> None:
        # Runs at midnight (world time pinned to it): the day that just ended is closed.
        now = self._clock.now()
        day = utc_date(now) - timedelta(days=1)
        self._scheduler.at(next_midnight(now), self._close, "settlement close")
        if day not in self.reports:
            self._batches += 1
            rows = list(self._items.pop(day, []))
            report = SettlementReport(day, self._batches, rows, now)
            self._inject(report)
            report.csv = self._render(report)
            self.reports[day] = report
            self._published(report)

    def _inject(self, report: SettlementReport) -> None:
        pending = self.pending_discrepancies
        rows = report.rows
        while pending["missing_row"] and rows:
            victim = rows.pop(self._rng.randrange(len(rows)))
            pending["missing_row"] -= 1
            report.injected.append({"kind": "missing_row", "item_id": victim.item_id})
        while pending["amount_mismatch"] and rows:
            i = self._rng.randrange(len(rows))
            delta = self._rng.choice((-1, 1)) * self._rng.randint(1, 99)
            rows[i] = replace(rows[i], gross=rows[i].gross + delta)
            pending["amount_mismatch"] -= 1
            report.injected.append(
                {"kind": "amount_mismatch", "item_id": rows[i].item_id, "delta": delta}
            )
        while pending["unknown_row"]:
            template = rows[0] if rows else None
            currency = template.currency if template else "EUR"
            gross = self._rng.randint(100, 99_999)
            ghost = LedgerItem(
                kind="capture",
                payment_id=self._unknown_id(),
                item_id=self._unknown_id(),
                merchant_reference=f"unknown-{self._rng.randrange(10**8):08d}",
                currency=currency,
                gross=gross,
                fee=gross // 50,
                booked_at=self._clock.now(),
                settles_on=report.day,
                brand="visa",
            )
            rows.insert(self._rng.randrange(len(rows) + 1), ghost)
            pending["unknown_row"] -= 1
            report.injected.append({"kind": "unknown_row", "item_id": ghost.item_id})
