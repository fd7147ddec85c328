"""The ``kassa sandbox`` command: ports, manifest, webhook URLs, clock, clean stop."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .support import SERVICES, Sandbox, start_sandbox


def test_manifest_lists_every_service(sandbox: Sandbox) -> None:
    assert set(sandbox.services) == set(SERVICES)
    ports = set()
    for name, service in sandbox.services.items():
        assert service["name"] == name
        assert service["credentials"]
        assert service["webhook_secret"]
        assert httpx.get(service["base_url"] + "/healthz").json() == {
            "status": "ok", "service": name,
        }  # fmt: skip
        ports.add(service["base_url"].rsplit(":", 1)[1])
        info = httpx.get(service["base_url"] + "/admin/info").json()
        assert info["credentials"] == service["credentials"]
    assert len(ports) == len(SERVICES)


def test_world_time_is_shared_and_only_moves_forward(sandbox: Sandbox) -> None:
    before = sandbox.admin("bank", "GET", "/admin/clock")["now"]
    moved = sandbox.admin("wallet", "POST", "/admin/clock/advance", {"seconds": 3600})
    assert moved["now"] >= before + 3600
    assert sandbox.admin("bank", "GET", "/admin/clock")["now"] >= before + 3600
    back = sandbox.client("bank").post("/admin/clock/advance", json={"seconds": -5})
    assert back.status_code == 400


def free_base_port() -> int:
    """A base port whose next six ports are free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 7 > 65535:
            continue
        try:
            held = []
            for p in range(base + 1, base + 7):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free port range")


def test_base_port_webhook_urls_and_clean_stop(tmp_path: Path) -> None:
    base = free_base_port()
    manifest = tmp_path / "manifest.json"
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from kassa.sandbox.cli import app; app()",
             "--base-port", str(base), "--manifest", str(manifest), "--seed", "3",
             "--webhook-url", "bank=http://127.0.0.1:9/bank",
             "--webhook-url", "acquirer_b=http://127.0.0.1:9/b"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        while not manifest.exists():
            assert proc.poll() is None, log.read_text()
            time.sleep(0.02)
        services = json.loads(manifest.read_text())["services"]
        urls = [services[name]["base_url"] for name in SERVICES]
        assert urls == [f"http://127.0.0.1:{base + i}" for i in range(1, 7)]
        assert services["bank"]["webhook_url"] == "http://127.0.0.1:9/bank"
        assert httpx.get(urls[1] + "/admin/webhook-url").json() == {"url": "http://127.0.0.1:9/b"}
        assert "acquirer_a" in log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0


def test_sigint_stops_it_cleanly(tmp_path: Path) -> None:
    proc, manifest = start_sandbox(tmp_path)
    url = json.loads(manifest.read_text())["services"]["acquirer_a"]["base_url"]
    assert httpx.get(url + "/healthz").status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert "Traceback" not in (tmp_path / "sandbox.log").read_text()


def test_unknown_webhook_service_is_rejected(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", "from kassa.sandbox.cli import app; app()",
         "--base-port", "0", "--webhook-url", "nobody=http://x/"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert "--webhook-url" in r.stderr
