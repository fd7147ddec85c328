"""The invariant check: every balance recomputed from the transfers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa.core.db import Database
from kassa.ledger import repository


@dataclass
class Report:
    """What ``verify`` found. ``ok`` is true when there is nothing in ``problems``."""

    sub_accounts: int = 0
    transfers: int = 0
    currencies: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sub_accounts": self.sub_accounts,
            "transfers": self.transfers,
            "currencies": self.currencies,
            "problems": self.problems,
        }


async def verify(db: Database, merchant_id: str | None = None) -> Report:
    """Check the ledger (one merchant's, or all) in one consistent snapshot; moves nothing.

    - every sub-account's four counters equal the sums of its transfers;
    - every transfer's stored running counters equal a replay in ledger-time order, and no two
      legs of a sub-account share a timestamp;
    - Σ debits = Σ credits per mode and currency, posted and pending;
    - every post/void matches its pending transfer (accounts, currency, amount, order, expiry)
      and the timeout work list holds exactly the unresolved pending transfers with timeouts;
    - every journal entry has all its transfers; no failed id exists as a transfer;
    - sub-accounts agree on their account's key and flags, and no limit is broken."""
    report = Report()
    async with db.transaction(isolation="repeatable_read") as conn:
        counts = await repository.count_rows(conn, merchant_id)
        report.sub_accounts, report.transfers = counts["sub_accounts"], counts["transfers"]
        for r in await repository.verify_counters(conn, merchant_id):
            report.problems.append(
                f"account {r['merchant_id']}/{r['account_id']}#{r['shard']}: stored "
                f"(dp={r['debits_posted']}, cp={r['credits_posted']}, "
                f"dpend={r['debits_pending']}, cpend={r['credits_pending']}, "
                f"last_ts={r['last_ts']}) but transfers give (dp={r['dp']}, cp={r['cp']}, "
                f"dpend={r['dpend']}, cpend={r['cpend']}, max_ts={r['max_ts']})"
            )
        for r in await repository.verify_running(conn, merchant_id):
            side = "debit" if r["is_dr"] else "credit"
            report.problems.append(
                f"transfer {r['merchant_id']}/{r['transfer_id']} ({side} "
                f"{r['account_id']}#{r['shard']}): running counters "
                f"({r['s_dp']}, {r['s_cp']}, {r['s_dpend']}, {r['s_cpend']}) but replay gives "
                f"({r['dp']}, {r['cp']}, {r['dpend']}, {r['cpend']})"
                + (f", {r['same_ts']} legs share its timestamp" if r["same_ts"] > 1 else "")
            )
        for r in await repository.verify_zero_sum(conn, merchant_id):
            entry = {
                k: (int(v) if k != "currency" and k != "livemode" else v) for k, v in r.items()
            }
            report.currencies.append(entry)
            for kind in ("posted", "pending"):
                if r[f"debits_{kind}"] != r[f"credits_{kind}"]:
                    report.problems.append(
                        f"{'live' if r['livemode'] else 'test'} {r['currency']}: debits_{kind} "
                        f"{r[f'debits_{kind}']} != credits_{kind} {r[f'credits_{kind}']}"
                    )
        for r in await repository.verify_two_phase(conn, merchant_id):
            report.problems.append(
                f"transfer {r['merchant_id']}/{r['transfer_id']}: {r['problem']}"
            )
        for r in await repository.verify_journals(conn, merchant_id):
            report.problems.append(f"{r['merchant_id']}/{r['id']}: {r['problem']}")
        for r in await repository.verify_accounts(conn, merchant_id):
            report.problems.append(f"account {r['merchant_id']}/{r['id']}: {r['problem']}")
    return report
