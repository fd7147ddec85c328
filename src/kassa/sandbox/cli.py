"""``kassa sandbox``: run the simulated outside world in the foreground."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvloop

from kassa.sandbox.runner import SERVICE_NAMES, serve

app = typer.Typer(
    help="The sandbox: card acquirers, bank rails, 3-D Secure, a wallet and BNPL.",
    add_completion=False,
)


def parse_webhook_urls(values: list[str]) -> dict[str, str]:
    """Turn ``NAME=URL`` options into a mapping, rejecting unknown service names."""
    urls: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or name not in SERVICE_NAMES or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(
                f"{value!r}: expected NAME=URL with NAME one of {', '.join(SERVICE_NAMES)}",
                param_hint="--webhook-url",
            )
        urls[name] = url
    return urls


@app.callback(invoke_without_command=True)
def sandbox(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    base_port: Annotated[
        int,
        typer.Option(help="Services listen on base+1, base+2, …; 0 picks free ports."),
    ] = 8100,
    manifest: Annotated[
        Path | None,
        typer.Option(help="Once all services listen, write their URLs and secrets here."),
    ] = None,
    webhook_url: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL: where service NAME sends notifications (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for ids and injected faults.")] = 0,
) -> None:
    """Start every sandbox service in this process until Ctrl-C (SIGINT) or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    urls = parse_webhook_urls(webhook_url or [])
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(
            serve(
                host=host,
                base_port=base_port,
                seed=seed,
                webhook_urls=urls,
                manifest_path=manifest,
                announce=lambda line: typer.echo(line),
            )
        )
