"""``kassa ledger``: verify the books, read a balance, page through an account's history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

app = typer.Typer(help="The ledger: verify, balances, history.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
MerchantOption = Annotated[str, typer.Option(help="The merchant whose books to read.")]
LiveFlag = Annotated[bool, typer.Option("--live", help="Live mode (default: test mode).")]


def _unix(value: str | None) -> int | None:
    """Unix seconds from ``1700000000`` or an ISO 8601 time (UTC unless it says otherwise)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@app.command()
def verify(
    merchant: Annotated[str | None, typer.Option(help="Only this merchant's books.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recompute every balance from the transfers and check the invariants; exit 1 on any
    difference."""
    from kassa.cli import _print, _run, console
    from kassa.ledger.service import verify as run_verify

    report = _run(lambda db: run_verify(db, merchant))
    if as_json:
        _print(report.as_dict(), True)
    else:
        table = Table(
            "mode",
            "currency",
            "sub-accounts",
            "debits posted",
            "credits posted",
            "debits pending",
            "credits pending",
        )
        for c in report.currencies:
            table.add_row(
                "live" if c["livemode"] else "test",
                c["currency"],
                str(c["sub_accounts"]),
                str(c["debits_posted"]),
                str(c["credits_posted"]),
                str(c["debits_pending"]),
                str(c["credits_pending"]),
            )
        console.print(table)
        console.print(f"{report.sub_accounts} sub-accounts, {report.transfers} transfers")
        for problem in report.problems:
            console.print(f"[red]✗ {problem}[/red]", soft_wrap=True)
        console.print("[green]ledger verified[/green]" if report.ok else "[red]ledger broken[/red]")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def balance(
    account_id: str,
    merchant: MerchantOption,
    as_of: Annotated[
        str | None, typer.Option(help="Unix seconds or ISO time: the balance back then.")
    ] = None,
    live: LiveFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """An account's balance (sub-accounts summed), now or at a point in time."""
    from kassa.cli import _print, _run
    from kassa.ledger.service import operator

    _print(
        _run(lambda db: operator.retrieve_account(db, merchant, live, account_id, _unix(as_of))),
        as_json,
    )


@app.command()
def history(
    account_id: str,
    merchant: MerchantOption,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Entries per page.")] = 20,
    starting_after: Annotated[
        str | None, typer.Option(help="Continue after this transfer id.")
    ] = None,
    live: LiveFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """An account's transfers, newest first, with the running balance after each."""
    from kassa.cli import _print, _run, console
    from kassa.ledger.schemas import AccountTransfers
    from kassa.ledger.service import operator

    params = AccountTransfers.model_validate(
        {"merchant": merchant, "limit": limit, "starting_after": starting_after}
    )
    page: dict[str, Any] = _run(lambda db: operator.account_transfers(db, live, account_id, params))
    if as_json:
        _print(page, True)
        return
    table = Table("transfer", "time", "side", "amount", "currency", "type", "posted after")
    for e in page["data"]:
        t = e["transfer"]
        table.add_row(
            e["id"],
            datetime.fromtimestamp(t["created"]).isoformat(),
            e["side"],
            str(t["amount"]),
            t["currency"],
            t["type"],
            str(e["balance_after"]["posted"]),
        )
    console.print(table)
    if page["has_more"]:
        console.print(f"more: --starting-after {page['data'][-1]['id']}")
