"""``kassa routing``: a merchant's routing rules from the command line (the same service and
checks as ``/v1/routing/rules``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from kassa.core.errors import KassaError

app = typer.Typer(help="Merchants' routing rules.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
MerchantOption = Annotated[str, typer.Option(help="The merchant whose rules these are.")]
LiveFlag = Annotated[bool, typer.Option("--live", help="Live mode (default: test mode).")]


def _fail(exc: KassaError) -> typer.Exit:
    from kassa.cli import console

    param = f" ({exc.param})" if exc.param else ""
    console.print(f"[red]{exc.message}{param}[/red]")
    return typer.Exit(2)


@app.command("list")
def list_rules(merchant: MerchantOption, live: LiveFlag = False, as_json: JsonFlag = False) -> None:
    """The merchant's rules in the order routing evaluates them."""
    from kassa.cli import _print, _run, console
    from kassa.connectors.routing import service

    rules = _run(lambda db: service.rules_in_order(db, merchant, live))
    if as_json:
        _print(rules, True)
        return
    table = Table("id", "priority", "conditions", "action")
    for r in rules:
        conditions = {
            k: r[k]
            for k in (
                "currencies",
                "card_brands",
                "card_countries",
                "min_amount",
                "max_amount",
                "payment_method_types",
            )
            if r[k] is not None
        }
        action = r["connector"] or r["connectors"] or r["split"]
        table.add_row(r["id"], str(r["priority"]), json.dumps(conditions), json.dumps(action))
    console.print(table)


@app.command("create")
def create_rule(
    merchant: MerchantOption,
    priority: Annotated[int, typer.Option(help="Lower is evaluated first.")],
    currency: Annotated[list[str] | None, typer.Option(help="Condition, repeatable.")] = None,
    brand: Annotated[list[str] | None, typer.Option(help="Card brand, repeatable.")] = None,
    country: Annotated[list[str] | None, typer.Option(help="Card country, repeatable.")] = None,
    min_amount: Annotated[int | None, typer.Option(help="Minor units, inclusive.")] = None,
    max_amount: Annotated[int | None, typer.Option(help="Minor units, inclusive.")] = None,
    payment_method_type: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    connector: Annotated[str | None, typer.Option(help="Send matching payments here.")] = None,
    connectors: Annotated[
        list[str] | None, typer.Option(help="Rank these by success rate, then fee (repeatable).")
    ] = None,
    split: Annotated[
        list[str] | None, typer.Option(help="name=weight, repeatable; weights add up to 100.")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    live: LiveFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a routing rule (checked against the configured connectors)."""
    from kassa.cli import _print, _run
    from kassa.config import get_settings
    from kassa.connectors.configuration import load_configuration
    from kassa.connectors.routing import service
    from kassa.connectors.routing.schemas import RuleCreate
    from kassa.core.http.params import parse

    settings = get_settings()
    manifest = settings.sandbox_manifest or settings.data_dir / "sandbox.json"
    configs = {c.name: c for c in load_configuration(settings.connectors_file, manifest).connectors}
    raw: dict[str, Any] = {"priority": priority}
    for key, value in (
        ("currencies", currency),
        ("card_brands", brand),
        ("card_countries", country),
        ("min_amount", min_amount),
        ("max_amount", max_amount),
        ("payment_method_types", payment_method_type),
        ("connector", connector),
        ("connectors", connectors),
        ("description", description),
    ):
        if value:
            raw[key] = value
    if split:
        raw["split"] = dict(s.partition("=")[::2] for s in split)
    try:
        params = parse(RuleCreate, raw)
        rule = _run(lambda db: service.create_rule(db, merchant, live, params, configs))
    except KassaError as exc:
        raise _fail(exc) from None
    _print(rule, as_json)


@app.command("delete")
def delete_rule(
    merchant: MerchantOption, rule_id: str, live: LiveFlag = False, as_json: JsonFlag = False
) -> None:
    """Remove a routing rule."""
    from kassa.cli import _print, _run
    from kassa.connectors.routing import service

    try:
        _print(_run(lambda db: service.delete_rule(db, merchant, live, rule_id)), as_json)
    except KassaError as exc:
        raise _fail(exc) from None
