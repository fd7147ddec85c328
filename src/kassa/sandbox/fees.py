"""Acquirer fee schedules: a percentage by card brand plus fixed fees per currency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kassa.sandbox.money import parse_major


@dataclass(frozen=True)
class FeeSchedule:
    """What an acquirer charges, in basis points and major-unit decimal strings."""

    percent_bps: Mapping[str, int]  # by brand; "*" is the default
    capture_fixed: Mapping[str, str]  # by currency, e.g. {"EUR": "0.10", "JPY": "15"}
    refund_fixed: Mapping[str, str]
    chargeback_fixed: Mapping[str, str]

    def capture_fee(self, amount: int, currency: str, brand: str) -> int:
        """Fee in minor units for capturing ``amount`` (half-up rounding of the percentage)."""
        bps = self.percent_bps.get(brand, self.percent_bps["*"])
        return (amount * bps + 5_000) // 10_000 + self._fixed(self.capture_fixed, currency)

    def refund_fee(self, currency: str) -> int:
        """Fee in minor units for one refund."""
        return self._fixed(self.refund_fixed, currency)

    def chargeback_fee(self, currency: str) -> int:
        """Fee in minor units for one chargeback."""
        return self._fixed(self.chargeback_fixed, currency)

    @staticmethod
    def _fixed(table: Mapping[str, str], currency: str) -> int:
        return parse_major(table.get(currency, "0"), currency)

    def describe(self) -> dict[str, object]:
        """Return the schedule as JSON for the manifest and docs."""
        return {
            "percent_bps": dict(self.percent_bps),
            "capture_fixed": dict(self.capture_fixed),
            "refund_fixed": dict(self.refund_fixed),
            "chargeback_fixed": dict(self.chargeback_fixed),
        }
