"""Helpers for connector tests: the sandbox's admin API, a webhook receiver that answers with a
connector's own verification and acknowledgement, the shopper's side of a 3-D Secure challenge,
and request builders."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from kassa.connectors.base import (
    AuthorizeRequest,
    Card,
    ConnectorError,
    ModificationRequest,
    PspEvent,
    WebhookBatch,
)

A, B = "acquirer_a", "acquirer_b"
ACQUIRERS = (A, B)
WAIT_S = 10.0
RETURN_URL = "https://shop.example/checkout/return"

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
THREE_DS_ALWAYS = "4000002760003184"
THREE_DS_UNLESS_OFF_SESSION = "4000002500003155"
DISPUTED = "4000000000000259"


def unique(prefix: str = "att") -> str:
    """A reference no other test uses (like Kassa's attempt ids)."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def card(number: str = VISA, *, cvc: str | None = None, exp: tuple[int, int] = (3, 2040)) -> Card:
    """A card as the vault hands it to a connector (4-digit CVC for Amex)."""
    if cvc is None:
        cvc = "1234" if number.startswith(("34", "37")) else "123"
    return Card(number, exp[0], exp[1], cvc, holder_name="Ada Lovelace")


def auth(
    number: str = VISA,
    *,
    amount: int = 1000,
    currency: str = "eur",
    capture: bool = False,
    reference: str | None = None,
    off_session: bool = False,
    **card_kw: Any,
) -> AuthorizeRequest:
    """An authorisation request with a fresh reference."""
    return AuthorizeRequest(
        reference=reference or unique(),
        amount=amount,
        currency=currency,
        card=card(number, **card_kw),
        capture=capture,
        description="Order 42",
        return_url=RETURN_URL,
        off_session=off_session,
    )


def modification(
    psp_reference: str,
    amount: int,
    currency: str = "eur",
    *,
    final: bool = True,
    prefix: str = "op",
) -> ModificationRequest:
    """A capture, void or refund of ``psp_reference`` with a fresh reference."""
    return ModificationRequest(unique(prefix), psp_reference, amount, currency, final_capture=final)


class Admin:
    """The sandbox's admin endpoints (no credentials, never faulted)."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.services: dict[str, dict[str, Any]] = dict(manifest["services"])
        self.clients = {
            name: httpx.Client(base_url=s["base_url"], timeout=10.0, trust_env=False)
            for name, s in self.services.items()
        }

    def call(self, name: str, method: str, path: str, body: Any = None) -> Any:
        r = self.clients[name].request(method, path, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def faults(self, name: str, config: Mapping[str, Any]) -> None:
        """Replace ``name``'s fault configuration."""
        self.call(name, "POST", "/admin/faults", dict(config))

    def settings(self, name: str, **values: float) -> None:
        self.call(name, "POST", "/admin/settings", values)

    def webhook_url(self, name: str, url: str | None) -> None:
        self.call(name, "PUT", "/admin/webhook-url", {"url": url})

    def records(self, name: str, reference: str) -> list[dict[str, Any]]:
        """The acquirer's own records under our reference, newest first."""
        r = self.clients[name].get("/admin/transactions", params={"reference": reference})
        assert r.status_code == 200, r.text
        return list(r.json()["data"])

    def record(self, name: str, reference: str) -> dict[str, Any]:
        """The one record under ``reference`` (asserting there is exactly one)."""
        found = self.records(name, reference)
        assert len(found) == 1, found
        return found[0]

    def deliveries(self, name: str, url: str) -> list[dict[str, Any]]:
        log = self.call(name, "GET", "/admin/webhook-deliveries")["data"]
        return [d for d in log if d["url"] == url]

    def now(self) -> float:
        """World time (it only moves forward, and tests may have moved it)."""
        return float(self.call(A, "GET", "/admin/clock")["now"])

    def advance(self, seconds: float) -> None:
        self.call(A, "POST", "/admin/clock/advance", {"seconds": seconds})

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def wait_for(check: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def shopper_completes_challenge(url: str, action: str = "authenticate") -> dict[str, str]:
    """Play the shopper on the 3-D Secure challenge page; return the query parameters the
    shopper's browser brings back to the return URL."""
    with httpx.Client(timeout=10.0, trust_env=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert "authenticate" in page.text, page.text
        answer = browser.post(url, data={"action": action})
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(RETURN_URL), location
    return dict(parse_qsl(urlsplit(location).query))


@dataclass
class Delivery:
    """One notification request the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    events: tuple[PspEvent, ...] = ()
    error: str | None = None


Parser = Callable[[bytes, Mapping[str, str]], WebhookBatch]


class WebhookReceiver:
    """Kassa's webhook intake in miniature: a threaded HTTP server where each path is verified
    and parsed by a connector's ``parse_webhook`` and answered with its acknowledgement, or
    with 401 when verification fails (so the PSP sends it again)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._parsers: dict[str, Parser] = {}
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, ctype = receiver._handle(self.path, headers, body)
                self.send_response(status)
                self.send_header("content-type", ctype)
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

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, str]:
        parser = self._parsers.get(path)
        delivery = Delivery(path, headers, body, 404)
        answer: tuple[int, bytes, str] = (404, b"unknown path", "text/plain")
        if parser is not None:
            try:
                batch = parser(body, headers)
            except ConnectorError as exc:
                delivery.status, delivery.error = 401, str(exc)
                answer = (401, b"signature rejected", "text/plain")
            else:
                delivery.status, delivery.events = batch.ack.status, batch.events
                answer = (batch.ack.status, batch.ack.body, batch.ack.content_type)
        with self._lock:
            self.deliveries.append(delivery)
            self._lock.notify_all()
        return answer

    def endpoint(self, parser: Parser) -> str:
        """A fresh URL whose deliveries ``parser`` verifies and parses."""
        path = f"/hooks/{uuid.uuid4().hex}"
        self._parsers[path] = parser
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, url: str) -> list[Delivery]:
        path = urlsplit(url).path
        with self._lock:
            return [d for d in self.deliveries if d.path == path]

    def events(self, url: str) -> list[PspEvent]:
        """Every verified event delivered to ``url`` (duplicates included)."""
        return [e for d in self.received(url) for e in d.events]

    def wait_event(
        self, url: str, match: Callable[[PspEvent], bool], timeout: float = WAIT_S
    ) -> PspEvent:
        """Wait for a verified event on ``url`` that ``match``es; return it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [e for e in self.events(url) if match(e)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event on {url}: {self.events(url)}")
                self._lock.wait(left)

    def wait_delivery(
        self, url: str, match: Callable[[Delivery], bool], timeout: float = WAIT_S
    ) -> Delivery:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [d for d in self.received(url) if match(d)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching delivery on {url}: {self.received(url)}")
                self._lock.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
