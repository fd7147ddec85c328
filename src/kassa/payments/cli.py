"""``kassa payments``: attempts whose outcome is unknown, for operators."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from kassa.core.db import Database

app = typer.Typer(help="Payments: unresolved attempts.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("unresolved")
def unresolved(
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Attempts flagged for review: every status inquiry on the schedule learned nothing, so
    whether the customer was charged is unknown. Check at the PSP, then `kassa payments
    resolve` once it answers."""
    from kassa.cli import _print, _run, console
    from kassa.payments.service import attempts

    rows: list[dict[str, Any]] = _run(lambda db: attempts.charges_in_review(db, limit))
    if as_json:
        _print(rows, True)
        return
    table = Table(
        "charge", "merchant", "intent", "connector", "amount", "created", "inquiries", "since"
    )
    for r in rows:
        table.add_row(
            r["id"],
            r["merchant_id"],
            r["intent_id"],
            r["connector"],
            f"{r['amount']} {r['currency']}",
            str(r["created_at"]),
            str(r["inquiries"]),
            str(r["review_since"]),
        )
    console.print(table)


@app.command("resolve")
def resolve(
    charge: Annotated[str, typer.Argument(help="The attempt (ch_…) to ask the PSP about.")],
    merchant: Annotated[str, typer.Option(help="The merchant it belongs to.")],
    live: Annotated[bool, typer.Option("--live", help="Live mode (default: test mode).")] = False,
) -> None:
    """Ask the PSP about one attempt now and finish it if the PSP knows."""
    from kassa.cli import _run, console
    from kassa.config import get_settings
    from kassa.connectors.configuration import load_configuration
    from kassa.connectors.registry import ConnectorRegistry
    from kassa.payments.service import attempts
    from kassa.payments.service.context import Payments

    settings = get_settings()

    async def go(db: Database) -> str:
        registry = ConnectorRegistry.from_configuration(
            load_configuration(settings.connectors_file, settings.sandbox_manifest)
        )
        try:
            return await attempts.resolve_charge(Payments(db, registry), merchant, live, charge)
        finally:
            await registry.close()

    console.print(f"{charge}: {_run(go)}")
