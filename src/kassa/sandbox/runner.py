"""Starts every sandbox service in one process and event loop, each on its own port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kassa.sandbox.acquirer_a import ArvonaService
from kassa.sandbox.acquirer_b import BeltraneService
from kassa.sandbox.bank import BankService
from kassa.sandbox.bnpl import BnplService
from kassa.sandbox.httpserver import HttpServer
from kassa.sandbox.threeds import ThreeDSService
from kassa.sandbox.wallet import WalletService
from kassa.sandbox.world import World

# Port order: base+1, base+2, … in this order.
SERVICE_NAMES = ("acquirer_a", "acquirer_b", "bank", "threeds", "wallet", "bnpl")


def build_world(seed: int) -> World:
    """Create the world and all its services (not yet listening)."""
    world = World(seed)
    threeds = ThreeDSService(world)
    for service in (
        ArvonaService(world, threeds),
        BeltraneService(world, threeds),
        BankService(world),
        threeds,
        WalletService(world),
        BnplService(world),
    ):
        world.add(service)
    assert tuple(world.services) == SERVICE_NAMES
    return world


def manifest(world: World) -> dict[str, Any]:
    """Return the manifest: every service's name, base URL, credentials and secret."""
    return {
        "seed": world.seed,
        "pid": os.getpid(),
        "services": {name: s.describe() for name, s in world.services.items()},
    }


def write_manifest(path: Path, data: Mapping[str, Any]) -> None:
    """Write the manifest atomically, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    tmp.replace(path)


async def serve(
    *,
    host: str,
    base_port: int,
    seed: int,
    webhook_urls: Mapping[str, str],
    manifest_path: Path | None,
    announce: Callable[[str], None],
) -> None:
    """Run every service until SIGINT or SIGTERM, then stop cleanly."""
    world = build_world(seed)
    servers: list[HttpServer] = []
    public_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for offset, service in enumerate(world.services.values(), start=1):
            server = HttpServer(service)
            port = await server.start(host, 0 if base_port == 0 else base_port + offset)
            servers.append(server)
            service.base_url = f"http://{public_host}:{port}"
        for name, url in webhook_urls.items():
            world.services[name].webhooks.url = url
        world.start()
        if manifest_path is not None:
            write_manifest(manifest_path, manifest(world))
        for service in world.services.values():
            announce(f"{service.name:<11} {service.base_url}  {service.title}")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for server in servers:
            await server.close()
        await world.close()
        if manifest_path is not None:
            with contextlib.suppress(FileNotFoundError):
                manifest_path.with_name(manifest_path.name + ".tmp").unlink()
