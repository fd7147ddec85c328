"""Test helpers: a client for the running sandbox and a local webhook receiver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

A = "acquirer_a"
B = "acquirer_b"
SERVICES = ("acquirer_a", "acquirer_b", "bank", "threeds", "wallet", "bnpl")
WAIT_S = 15.0


def luhn_complete(prefix: str, length: int = 16) -> str:
    """Return a Luhn-valid card number of ``length`` digits starting with ``prefix``."""
    body = prefix.ljust(length - 1, "0")
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)


def unique(prefix: str = "ref") -> str:
    """Return a reference no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Sandbox:
    """Clients for every service of one running sandbox process."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.services: dict[str, dict[str, Any]] = manifest["services"]
        self.default_settings: dict[str, dict[str, float]] = {}
        self.clients = {
            name: httpx.Client(base_url=s["base_url"], timeout=10.0, trust_env=False)
            for name, s in self.services.items()
        }

    def url(self, name: str) -> str:
        return str(self.services[name]["base_url"])

    def creds(self, name: str) -> dict[str, str]:
        return dict(self.services[name]["credentials"])

    def secret(self, name: str) -> str:
        return str(self.services[name]["webhook_secret"])

    def client(self, name: str) -> httpx.Client:
        return self.clients[name]

    def admin(self, name: str, method: str, path: str, body: Any = None) -> Any:
        """Call an admin endpoint and return its JSON (asserting 200)."""
        r = self.clients[name].request(method, path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def records(self, name: str, reference: str) -> list[dict[str, Any]]:
        """The service's own records for ``reference`` (via /admin/transactions)."""
        r = self.clients[name].get("/admin/transactions", params={"reference": reference})
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move world time forward (for every service) and run what fell due."""
        return dict(self.admin("acquirer_a", "POST", "/admin/clock/advance", {"seconds": seconds}))

    def now(self) -> float:
        return float(self.admin("acquirer_a", "GET", "/admin/clock")["now"])

    def advance_past_close(self, days_after_today: int) -> str:
        """Advance to just after the close of today + ``days_after_today``; return that date."""
        now = self.now()
        today = datetime.fromtimestamp(now, UTC).date()
        day = today + timedelta(days=days_after_today)
        close = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        self.advance(close.timestamp() - now + 60)
        return day.isoformat()

    def deliveries(self, name: str, hook: Hook) -> list[dict[str, Any]]:
        """The service's delivery log entries addressed to ``hook``."""
        log = self.admin(name, "GET", "/admin/webhook-deliveries")["data"]
        return [d for d in log if d["url"].endswith(hook.path)]

    def wait_attempts(self, name: str, hook: Hook, attempts: int) -> list[dict[str, Any]]:
        """Wait until the first delivery to ``hook`` has made ``attempts`` attempts."""
        deadline = time.monotonic() + WAIT_S
        while True:
            found = self.deliveries(name, hook)
            if found and len(found[0]["attempts"]) >= attempts:
                return found
            assert time.monotonic() < deadline, found
            time.sleep(0.02)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


class Receiver:
    """A small threaded HTTP server that records webhooks and answers ``[accepted]``."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._received: list[Received] = []
        self._failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    failing = receiver._failures.get(self.path, 0)
                    if failing:
                        receiver._failures[self.path] = failing - 1
                    else:
                        receiver._received.append(
                            Received(
                                self.path, {k.lower(): v for k, v in self.headers.items()}, body
                            )
                        )
                        receiver._lock.notify_all()
                status, answer = (500, b"nope") if failing else (200, b"[accepted]")
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fail_next(self, path: str, count: int) -> None:
        """Answer the next ``count`` posts to ``path`` with HTTP 500."""
        with self._lock:
            self._failures[path] = count

    def received(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if r.path == path]

    def wait(
        self, path: str, until: Callable[[list[Received]], bool], timeout: float = WAIT_S
    ) -> list[Received]:
        """Wait until ``until(received on path)`` holds; return what was received."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._received if r.path == path]
                if until(got):
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"webhooks on {path} never satisfied the wait: {got}")
                self._lock.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Hook:
    """Where one test's webhooks from one service arrive."""

    def __init__(self, receiver: Receiver, path: str) -> None:
        self.receiver = receiver
        self.path = path

    def all(self) -> list[Received]:
        return self.receiver.received(self.path)

    def wait(
        self, until: Callable[[list[Received]], bool], timeout: float = WAIT_S
    ) -> list[Received]:
        return self.receiver.wait(self.path, until, timeout)

    def wait_count(self, n: int) -> list[Received]:
        return self.wait(lambda got: len(got) >= n)

    def fail_next(self, count: int) -> None:
        self.receiver.fail_next(self.path, count)


# Signatures, computed here from the documented schemes rather than with sandbox code.


def arvona_item_signature(item: dict[str, Any], hex_key: str) -> str:
    amount = item.get("amount") or {}
    fields = [
        item.get("pspReference", ""),
        item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""),
        str(amount.get("value", "")),
        amount.get("currency", ""),
        item.get("eventCode", ""),
        item.get("success", ""),
    ]
    mac = hmac.new(bytes.fromhex(hex_key), ":".join(fields).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def arvona_items(received: list[Received], hex_key: str) -> list[dict[str, Any]]:
    """Flatten notification batches into items, asserting every item's signature."""
    items = []
    for r in received:
        for wrapper in r.json()["notificationItems"]:
            item = wrapper["NotificationRequestItem"]
            expected = arvona_item_signature(item, hex_key)
            assert hmac.compare_digest(item["additionalData"]["hmacSignature"], expected)
            items.append(item)
    return items


def check_timestamped(header: str, body: bytes, secret: str) -> None:
    """Assert a ``t=…,v1=…`` header signs ``body`` under ``secret``."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], mac.hexdigest())


def token_payload(token: str, secret: str) -> dict[str, Any]:
    """Check a signed result token's HMAC and return its payload."""
    body, mac = token.split(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)), expected)
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


# Request helpers for the two acquirers.


def arvona_headers(sb: Sandbox, key: str | None = None) -> dict[str, str]:
    h = {"x-api-key": sb.creds(A)["api_key"]}
    if key:
        h["idempotency-key"] = key
    return h


def arvona_pay(
    sb: Sandbox,
    number: str = "4242424242424242",
    *,
    amount: int = 1000,
    currency: str = "EUR",
    reference: str | None = None,
    key: str | None = None,
    cvc: str | None = "737",
    expiry: tuple[str, str] = ("03", "2040"),
    timeout: float = 10.0,
    **extra: Any,
) -> httpx.Response:
    """POST /v1/payments for a card; ``extra`` adds top-level request fields."""
    method: dict[str, Any] = {"type": "scheme", "number": number, "expiryMonth": expiry[0],
                              "expiryYear": expiry[1], "holderName": "Ada Test"}  # fmt: skip
    if cvc is not None:
        method["cvc"] = cvc
    body = {
        "amount": {"value": amount, "currency": currency},
        "reference": reference or unique("a"),
        "merchantAccount": sb.creds(A)["merchant_account"],
        "paymentMethod": method,
        **extra,
    }
    return sb.client(A).post(
        "/v1/payments", json=body, headers=arvona_headers(sb, key), timeout=timeout
    )


def arvona_authorised(sb: Sandbox, number: str = "4242424242424242", **kw: Any) -> dict[str, Any]:
    r = arvona_pay(sb, number, **kw)
    assert r.status_code == 200, r.text
    assert r.json()["resultCode"] == "Authorised", r.json()
    return dict(r.json())


def arvona_modify(
    sb: Sandbox,
    psp: str,
    kind: str,
    amount: int | None = None,
    key: str | None = None,
    reference: str | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST a capture, refund or cancel (``kind`` is the path segment, e.g. "captures")."""
    body: dict[str, Any] = {"merchantAccount": sb.creds(A)["merchant_account"],
                            "reference": reference or unique(kind)}  # fmt: skip
    if amount is not None:
        body["amount"] = {"value": amount, "currency": "EUR"}
    return sb.client(A).post(
        f"/v1/payments/{psp}/{kind}", json=body, headers=arvona_headers(sb, key), timeout=timeout
    )


def arvona_status(sb: Sandbox, psp: str) -> dict[str, Any]:
    r = sb.client(A).get(f"/v1/payments/{psp}", headers=arvona_headers(sb))
    assert r.status_code == 200, r.text
    return dict(r.json())


def beltrane_call(
    sb: Sandbox, key: str | None = None, timeout: float = 10.0, **fields: str
) -> dict[str, str]:
    """POST one form-encoded transaction with the credentials; return the answer's fields."""
    c = sb.creds(B)
    form = {"USER": c["user"], "VENDOR": c["vendor"], "PARTNER": c["partner"],
            "PWD": c["password"], **fields}  # fmt: skip
    headers = {"x-vps-request-id": key} if key else {}
    r = sb.client(B).post("/", data=form, headers=headers, timeout=timeout)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-www-form-urlencoded")
    return dict(parse_qsl(r.text, keep_blank_values=True))


def beltrane_sale(
    sb: Sandbox,
    acct: str = "4242424242424242",
    *,
    trx: str = "S",
    amt: str = "10.00",
    currency: str = "USD",
    custref: str | None = None,
    key: str | None = None,
    timeout: float = 10.0,
    **extra: str,
) -> dict[str, str]:
    """A sale (TRXTYPE=S) or authorization (trx="A"); ``extra`` adds or overrides fields."""
    fields = {"TRXTYPE": trx, "TENDER": "C", "ACCT": acct, "EXPDATE": "1240", "CVV2": "123",
              "AMT": amt, "CURRENCY": currency, "CUSTREF": custref or unique("b")}  # fmt: skip
    return beltrane_call(sb, key, timeout, **{**fields, **extra})


def start_sandbox(tmp: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a sandbox subprocess as ``kassa sandbox`` would; return it once its manifest exists."""
    manifest = tmp / "manifest.json"
    with (tmp / "sandbox.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from kassa.sandbox.cli import app; app()",
             "--base-port", "0", "--manifest", str(manifest), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while not manifest.exists():
        if proc.poll() is not None:
            raise RuntimeError((tmp / "sandbox.log").read_text())
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError("sandbox did not write its manifest")
        time.sleep(0.02)
    return proc, manifest
