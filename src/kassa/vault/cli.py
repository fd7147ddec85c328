"""``kassa vault …``: operating the card vault."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from kassa.core.db import Database
from kassa.core.keyring import keyring
from kassa.vault.rotation import RotationReport, rotate_kek

app = typer.Typer(help="The card vault (PCI zone).", no_args_is_help=True)


@app.command("rotate-kek")
def rotate_kek_command(
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Re-wrap every card's data key under the current KEK (KASSA_KEK, KASSA_KEK_ID), reading
    old wrappings with KASSA_PREVIOUS_KEKS ("id:base64,…"). Safe to re-run; exits 1 if rows
    remain wrapped by a KEK that was not given."""
    # Imported here: kassa.cli mounts this app, and owns the short-lived pool runner.
    from kassa.cli import _run

    try:
        ring = keyring()
    except (RuntimeError, ValueError) as exc:
        typer.echo(f"cannot build the keyring: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go(db: Database) -> RotationReport:
        return await rotate_kek(db, batch_size=batch_size, ring=ring)

    report = _run(go)
    if as_json:
        out = {
            "kek_id": report.kek_id,
            "rewrapped": report.rewrapped,
            "already_current": report.already_current,
            "unknown_kek": report.unknown_kek,
        }
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        typer.echo(
            f"KEK {report.kek_id}: {report.rewrapped} re-wrapped, "
            f"{report.already_current} already current, "
            f"{sum(report.unknown_kek.values())} under unknown KEKs"
        )
        for kek_id, n in report.unknown_kek.items():
            typer.echo(f"  {n} rows wrapped by {kek_id!r}: add it to KASSA_PREVIOUS_KEKS", err=True)
    if not report.ok:
        raise typer.Exit(1)
