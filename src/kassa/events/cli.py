"""``kassa webhooks …`` (operators' replay and secret rotation) and ``kassa relay``."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

webhooks_app = typer.Typer(help="Webhook endpoints: replay, secret rotation.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@webhooks_app.command("replay")
def replay(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint (we_…).")],
    event: Annotated[
        str | None, typer.Option(help="Replay this event (evt_…) only, not the dead letters.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue an endpoint's dead letters for delivery again, or one event with --event."""
    from kassa.cli import _print, _run
    from kassa.events.service import endpoints

    n = _run(lambda db: endpoints.replay_by_id(db, endpoint_id, event))
    _print({"webhook_endpoint": endpoint_id, "event": event, "replayed": n}, as_json)


@webhooks_app.command("rotate-secret")
def rotate_secret(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint (we_…).")],
    expires_in: Annotated[
        int, typer.Option(help="Seconds the old secret keeps signing (0 = at once).", min=0)
    ] = 86400,
    as_json: JsonFlag = False,
) -> None:
    """Issue a new signing secret and print it (shown once)."""
    from kassa.cli import _print, _run
    from kassa.events.service import endpoints

    if expires_in > 7 * 86400:
        raise typer.BadParameter("at most 7 days", param_hint="--expires-in")
    _print(_run(lambda db: endpoints.rotate_secret_by_id(db, endpoint_id, expires_in)), as_json)


def relay(
    nats_url: Annotated[
        str | None, typer.Option(help="NATS server (default KASSA_NATS_URL).")
    ] = None,
    name: Annotated[str, typer.Option(help="This relay's outbox consumer name.")] = "nats",
    from_beginning: Annotated[
        bool, typer.Option(help="On first start, also relay every retained event.")
    ] = False,
    batch: Annotated[int, typer.Option(help="Events per publish batch.", min=1, max=10000)] = 256,
    forget: Annotated[
        bool, typer.Option(help="Unregister the consumer (stop queueing for it) and exit.")
    ] = False,
) -> None:
    """Relay outbox events to NATS JetStream until Ctrl-C (exactly once per durable
    consumer; see docs/webhooks.md)."""
    from kassa.cli import _database_url
    from kassa.config import get_settings
    from kassa.core.db import Database
    from kassa.events.service import outbox
    from kassa.events.service import relay as relay_service

    dsn = _database_url()
    url = nats_url or get_settings().nats_url

    async def go() -> None:
        db = await Database.connect(dsn, 1, 3)
        try:
            if forget:
                await outbox.unregister_consumer(db, name)
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await relay_service.run(
                db, url, consumer=name, backfill=from_beginning, stop=stop, batch=batch
            )
        finally:
            await db.close()

    asyncio.run(go())
