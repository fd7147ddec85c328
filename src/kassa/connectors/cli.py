"""``kassa connectors``: circuit breakers and the error policy, for operators."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from kassa.connectors import breaker, policy
from kassa.core.db import Database

app = typer.Typer(help="Connectors: circuit breakers and the error policy.", no_args_is_help=True)
errors_app = typer.Typer(
    help="What a failed authorisation does next: retry, cascade or stop.", no_args_is_help=True
)
app.add_typer(errors_app, name="errors")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DefaultsFlag = Annotated[bool, typer.Option("--defaults", help="Also the code's defaults.")]


def _configured() -> list[str]:
    """The configured connectors' names (empty when the configuration cannot be read)."""
    from kassa.config import get_settings
    from kassa.connectors.configuration import ConfigurationError, load_configuration

    settings = get_settings()
    try:
        configuration = load_configuration(settings.connectors_file, settings.sandbox_manifest)
    except ConfigurationError:
        return []
    return [c.name for c in configuration.connectors]


@app.command("status")
def status(as_json: JsonFlag = False) -> None:
    """Every connector's circuit breaker as all processes see it."""
    from kassa.cli import _print, _run, console

    async def read(db: Database) -> dict[str, breaker.Shared]:
        async with db.connection() as conn:
            return await breaker.read_all(conn)

    shared = _run(read)
    names = list(dict.fromkeys([*_configured(), *sorted(shared)]))
    rows = [(shared.get(n) or breaker.Shared(n)).as_dict() for n in names]
    if as_json:
        _print(rows, True)
        return
    table = Table("connector", "state", "since", "half-open from", "reason")
    for r in rows:
        since = r["opened_at"] if r["state"] != "closed" else r["updated_at"]
        table.add_row(
            r["connector"],
            r["state"],
            str(since or "—"),
            str(r["retry_at"] or "—") if r["state"] == "open" else "—",
            r["reason"] or "",
        )
    console.print(table)


@app.command("reset")
def reset(connector: Annotated[str, typer.Argument(help="The connector's name.")]) -> None:
    """Close a connector's breaker now (e.g. after the PSP confirmed it recovered)."""
    from kassa.cli import _run, console

    changed = _run(lambda db: breaker.reset_breaker(db, connector))
    console.print(f"{connector}: {'closed' if changed else 'was already closed'}")


@errors_app.command("list")
def errors_list(
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Also the built-in defaults.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """The operators' overrides (and with --defaults the code's defaults below them)."""
    from kassa.cli import _print, _run, console

    async def read(db: Database) -> list[dict[str, Any]]:
        async with db.connection() as conn:
            return await policy.list_overrides(conn)

    rows: list[dict[str, Any]] = [{**r, "source": "table"} for r in _run(read)]
    if defaults:
        rows += [
            {"connector": "*", "code": code, "action": action.value, "source": "default"}
            for code, action in sorted(policy.DEFAULTS.items())
        ]
    if as_json:
        _print(rows, True)
        return
    table = Table("connector", "code", "action", "source", "note")
    for r in rows:
        table.add_row(r["connector"], r["code"], r["action"], r["source"], r.get("note") or "")
    console.print(table)


@errors_app.command("set")
def errors_set(
    code: Annotated[str, typer.Argument(help="not_sent, rate_limited, processing_error, …")],
    action: Annotated[str, typer.Argument(help="retry, cascade or stop.")],
    connector: Annotated[str, typer.Option(help="A connector's name, or * for all.")] = "*",
    note: Annotated[str | None, typer.Option(help="Why, for the next operator.")] = None,
) -> None:
    """Create or replace an override; running processes pick it up within seconds."""
    from kassa.cli import _run, console

    try:
        policy.check(code, action, connector)
    except policy.PolicyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None

    async def write(db: Database) -> policy.Action:
        async with db.transaction() as conn:
            return await policy.set_override(conn, connector, code, action, note)

    chosen = _run(write)
    console.print(f"{connector} {code}: {chosen.value}")


@errors_app.command("delete")
def errors_delete(
    code: Annotated[str, typer.Argument(help="The code whose override to remove.")],
    connector: Annotated[str, typer.Option(help="A connector's name, or * for all.")] = "*",
) -> None:
    """Remove an override: the connectors file or the default applies again."""
    from kassa.cli import _run, console

    async def delete(db: Database) -> bool:
        async with db.transaction() as conn:
            return await policy.delete_override(conn, connector, code)

    if not _run(delete):
        console.print(f"[red]no override for {connector} {code}[/red]")
        raise typer.Exit(1)
    console.print(f"{connector} {code}: override removed")
