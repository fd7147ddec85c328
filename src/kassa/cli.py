"""The ``kassa`` command: run the platform and operate it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from kassa.config import get_settings
from kassa.connectors.cli import app as connectors_app
from kassa.connectors.routing.cli import app as routing_app
from kassa.core import migrate as migrations
from kassa.core.crypto import generate_key
from kassa.core.db import Database
from kassa.core.embedded_pg import Cluster, free_port
from kassa.events.cli import relay as relay_command
from kassa.events.cli import webhooks_app
from kassa.ledger.cli import app as ledger_app
from kassa.payments.cli import app as payments_app
from kassa.sandbox.cli import app as sandbox_app
from kassa.vault.cli import app as vault_app

app = typer.Typer(
    help="Kassa: a self-hostable, Stripe-compatible payment platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
merchants_app = typer.Typer(help="Merchant accounts and API keys.", no_args_is_help=True)
app.add_typer(merchants_app, name="merchants")
app.add_typer(vault_app, name="vault")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(ledger_app, name="ledger")
app.add_typer(connectors_app, name="connectors")
app.add_typer(payments_app, name="payments")
app.add_typer(routing_app, name="routing")
app.command("relay")(relay_command)
console = Console()
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DEMO_MERCHANT = "Demo Merchant"


def _run(make: Callable[[Database], Awaitable[T]]) -> T:
    """Run one service call on a short-lived pool."""
    dsn = _database_url()

    async def go() -> T:
        db = await Database.connect(dsn, 1, 2)
        try:
            return await make(db)
        finally:
            await db.close()

    return asyncio.run(go())


def _database_url() -> str:
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    cluster = Cluster.at(settings.data_dir / "pgdata")
    if not (cluster.data_dir / "postmaster.pid").exists():
        console.print("[red]No database: set KASSA_DATABASE_URL or start `kassa up`.[/red]")
        raise typer.Exit(2)
    return cluster.dsn()


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        console.print_json(data=data, default=str)


def _load_local_secrets(data_dir: Path) -> None:
    """Generate the local run's KEK and index key once, keep them in ``.kassa/secrets.env``
    (mode 0600) and export them for this process and its children."""
    path = data_dir / "secrets.env"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"KASSA_KEK={generate_key()}\nKASSA_INDEX_KEY={generate_key()}\n")
        path.chmod(0o600)
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        os.environ.setdefault(key, value)
    get_settings.cache_clear()


@app.command()
def migrate() -> None:
    """Apply all pending database migrations."""
    migrations.upgrade(_database_url())
    console.print("migrations applied")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve the HTTP API (uvicorn with uvloop and httptools)."""
    import uvicorn

    settings = get_settings()
    n = workers or settings.api_workers
    if n > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = settings.data_dir.resolve() / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "kassa.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=n,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once by this worker.")] = 4,
) -> None:
    """Run background jobs until Ctrl-C (several workers may run at once)."""
    from kassa import worker as jobs_worker

    asyncio.run(jobs_worker.run(_database_url(), concurrency=concurrency))


@merchants_app.command("create")
def merchants_create(
    name: Annotated[str, typer.Option(help="Business name.")],
    country: Annotated[str, typer.Option(help="ISO country code.")] = "US",
    currency: Annotated[str, typer.Option(help="Default currency.")] = "usd",
    email: Annotated[str | None, typer.Option(help="Contact email.")] = None,
    platform_admin: Annotated[bool, typer.Option(help="Operator account (ledger reads).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a merchant and print its id and its API keys (shown once)."""
    from kassa.merchants import service

    created = _run(
        lambda db: service.create_merchant(
            db,
            name=name,
            country=country,
            default_currency=currency,
            email=email,
            platform_admin=platform_admin,
        )
    )
    out = {
        "id": created.merchant["id"],
        "name": name,
        "secret_key": created.key("secret"),
        "publishable_key": created.key("publishable"),
        "live_secret_key": created.key("secret", livemode=True),
        "live_publishable_key": created.key("publishable", livemode=True),
    }
    _print(out, as_json)


@merchants_app.command("list")
def merchants_list(as_json: JsonFlag = False) -> None:
    """List merchant accounts."""
    from kassa.merchants import service

    rows = _run(service.list_merchants)
    if as_json:
        _print(rows, True)
        return
    table = Table("id", "name", "country", "currency", "created")
    for r in rows:
        table.add_row(
            r["id"],
            r["business_profile"]["name"],
            r["country"],
            r["default_currency"],
            time.strftime("%Y-%m-%d", time.gmtime(r["created"])),
        )
    console.print(table)


@merchants_app.command("show")
def merchants_show(merchant_id: str, as_json: JsonFlag = False) -> None:
    """Show one merchant with its keys (secret keys only by their last four characters)."""
    from kassa.merchants import service

    _print(_run(lambda db: service.get_merchant(db, merchant_id)), as_json)


@merchants_app.command("rotate-key")
def merchants_rotate_key(
    merchant_id: str,
    kind: Annotated[str, typer.Option(help="secret or publishable.")] = "secret",
    live: Annotated[bool, typer.Option(help="Rotate the live-mode key.")] = False,
    overlap_hours: Annotated[float, typer.Option(help="How long old keys keep working.")] = 24,
    as_json: JsonFlag = False,
) -> None:
    """Issue a new key; the previous ones expire after the overlap."""
    from kassa.merchants import service

    if kind not in ("secret", "publishable"):
        raise typer.BadParameter("kind must be secret or publishable")
    key_kind: service.KeyKind = "secret" if kind == "secret" else "publishable"
    new, expiring = _run(
        lambda db: service.rotate_key(
            db,
            merchant_id,
            key_kind,
            livemode=live,
            overlap=timedelta(hours=overlap_hours),
        )
    )
    _print({"new_key": new.public(), "expiring_key_ids": expiring}, as_json)


@merchants_app.command("fee-plan")
def merchants_fee_plan(
    merchant_id: str,
    currency: Annotated[str, typer.Option(help="ISO code, or * for every other currency.")] = "*",
    percent: Annotated[float, typer.Option(help="Percentage of each capture, e.g. 2.9.")] = 2.9,
    fixed: Annotated[int, typer.Option(help="Fixed part per capture, in minor units.")] = 30,
    refund_fees: Annotated[bool, typer.Option(help="Give fees back on refunds.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Set the merchant's processing fees (default 2.9 % + 30 minor units)."""
    from kassa.payments.service import money

    plan = _run(lambda db: money.set_fee_plan(
        db, merchant_id, currency, percent_bps=round(percent * 100), fixed=fixed,
        refund_fees=refund_fees))  # fmt: skip
    _print({"merchant": merchant_id, "currency": currency, "percent_bps": plan.percent_bps,
            "fixed": plan.fixed, "refund_fees": plan.refund_fees}, as_json)  # fmt: skip


@merchants_app.command("create-key")
def merchants_create_key(
    merchant_id: str,
    permission: Annotated[list[str], typer.Option(help="resource=read|write|none, repeatable.")],
    live: Annotated[bool, typer.Option(help="A live-mode key.")] = False,
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a restricted key (``rk_…``) with per-resource permissions."""
    from kassa.merchants import service

    perms = dict(p.split("=", 1) for p in permission)
    key = _run(
        lambda db: service.create_restricted_key(db, merchant_id, perms, livemode=live, name=name)
    )
    _print(key.public(), as_json)


def _ensure_demo_merchant(dsn: str, data_dir: Path) -> dict[str, str]:
    """The demo merchant's test keys, created on the first run and kept in ``.kassa``."""
    from kassa.merchants import service

    path = data_dir / "demo-merchant.json"
    if path.exists():
        saved: dict[str, str] = json.loads(path.read_text())
        return saved

    async def make(db: Database) -> dict[str, str]:
        created = await service.create_merchant(db, name=DEMO_MERCHANT, email="demo@example.com")
        return {
            "id": created.merchant["id"],
            "secret_key": created.key("secret"),
            "publishable_key": created.key("publishable"),
        }

    os.environ["KASSA_DATABASE_URL"] = dsn
    get_settings.cache_clear()
    keys = _run(make)
    path.write_text(json.dumps(keys, indent=2))
    path.chmod(0o600)
    return keys


def _wait_manifest(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> Any:
    """The sandbox's manifest, once every service listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {proc.returncode}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


@app.command()
def up(
    port: Annotated[
        int | None, typer.Option(help="API port (default 8000, or a free one).")
    ] = None,
) -> None:
    """Start everything in the foreground: PostgreSQL (embedded unless KASSA_DATABASE_URL is
    set), migrations, the demo merchant, the API and the worker. Ctrl-C stops it all."""
    settings = get_settings()
    data_dir = settings.data_dir.resolve()
    _load_local_secrets(data_dir)
    cluster: Cluster | None = None
    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell may start us with SIGINT ignored (a background job).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        if settings.database_url:
            dsn = settings.database_url
        else:
            cluster = Cluster.at(data_dir / "pgdata")
            if not cluster.initialized():
                console.print(f"initialising PostgreSQL in {cluster.data_dir}")
                cluster.init(durable=True)
            cluster.stop()  # a cluster left running by a killed run
            cluster.start()
            cluster.create_database("kassa")
            dsn = cluster.dsn()
        migrations.upgrade(dsn)
        keys = _ensure_demo_merchant(dsn, data_dir)
        api_port = port or (settings.api_port if _port_free(settings.api_port) else free_port())
        env = {**os.environ, "KASSA_DATABASE_URL": dsn}
        kassa = [sys.executable, "-m", "kassa"]
        api_url = f"http://{settings.api_host}:{api_port}"
        manifest = data_dir / "sandbox.json"
        manifest.unlink(missing_ok=True)
        base_port = "8100" if all(_port_free(8100 + i) for i in range(1, 7)) else "0"
        # The sandbox is someone else's system: its log goes to a file, not Kassa's console.
        with open(data_dir / "sandbox.log", "ab") as sandbox_log:
            sandbox_proc = subprocess.Popen(
                [*kassa, "sandbox", "--base-port", base_port, "--manifest", str(manifest),
                 *(f for name in ("acquirer_a", "acquirer_b") for f in (
                     "--webhook-url", f"{name}={api_url}/psp/{name}/webhooks"))],
                env=env, stdout=sandbox_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        children.append(sandbox_proc)
        sandbox = _wait_manifest(manifest, sandbox_proc)
        env["KASSA_SANDBOX_MANIFEST"] = str(manifest)
        # One metrics directory for the API and the worker, so /metrics shows both.
        metrics_dir = data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        env.setdefault("KASSA_PUBLIC_URL", api_url)
        api_proc = subprocess.Popen([*kassa, "api", "--port", str(api_port)], env=env)
        children.append(api_proc)
        children.append(subprocess.Popen([*kassa, "worker"], env=env))
        # Everything a newcomer needs is printed before the API answers, so whoever sees it
        # healthy already has the key.
        console.print(
            "\n[bold green]Kassa[/bold green]\n"
            f"  API:             {api_url}\n"
            f"  OpenAPI:         {api_url}/openapi.json\n"
            "  Dashboard:       not built yet\n"
            f"  Merchant:        {keys['id']} ({DEMO_MERCHANT})\n"
            f"  Secret key:      {keys['secret_key']}\n"
            f"  Publishable key: {keys['publishable_key']}\n"
            f"  Database:        {dsn}\n"
            "  Sandbox (the simulated outside world; docs/sandbox.md, log in .kassa/sandbox.log):\n"
            + "".join(
                f"    {name:<11} {svc['base_url']}  {svc.get('title', '')}\n"
                for name, svc in sandbox["services"].items()
            )
            + "Starting the API…",
            soft_wrap=True,
        )
        sys.stdout.flush()
        _wait_healthy(api_url, api_proc)
        console.print("[bold green]Kassa is running.[/bold green] Press Ctrl-C to stop.\n")
        sys.stdout.flush()
        while all(c.poll() is None for c in children):
            time.sleep(0.5)
        console.print("[red]a Kassa process exited; stopping[/red]")
    except KeyboardInterrupt:
        console.print("\nstopping…")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for c in children:
            if c.poll() is None:
                c.terminate()
        for c in children:
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
        if cluster is not None:
            cluster.stop()
        console.print("stopped")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> None:
    app()
