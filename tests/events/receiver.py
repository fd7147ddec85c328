"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in its own thread that checks
every delivery with the stripe SDK's ``Webhook.construct_event``, as a merchant's code would."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe

from kassa.core.embedded_pg import free_port


class Receiver:
    """``secrets``: every delivery must verify with each of them (during a rotation both the
    old and the new one). ``status``: what to answer (503 simulates a broken receiver);
    ``stop()`` makes the port refuse connections until ``start()``."""

    def __init__(self, secrets: list[str] | None = None, delay: float = 0.0) -> None:
        self.port = free_port()
        # ``str | None``: the SDK types an endpoint's ``secret`` as optional.
        self.secrets: list[str | None] = list(secrets or [])
        self.status = 200
        self.delay = delay
        self.events: list[dict[str, Any]] = []
        self.headers: list[str] = []
        self.rejected: list[str] = []
        self.concurrent = 0
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def ids(self) -> list[str]:
        with self._lock:
            return [e["id"] for e in self.events]

    def counts(self) -> Counter[str]:
        return Counter(self.ids())

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = self.rfile.read(length)
                if len(payload) < length:
                    # The sender died mid-request (a test kills it): no delivery happened.
                    self.close_connection = True
                    return
                header = self.headers.get("Stripe-Signature", "")
                with receiver._lock:
                    receiver.concurrent += 1
                    receiver.max_concurrent = max(receiver.max_concurrent, receiver.concurrent)
                try:
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    status = receiver.status
                    if status == 200:
                        status = receiver._verify(payload, header)
                finally:
                    with receiver._lock:
                        receiver.concurrent -= 1
                body = b'{"received": true}' if status == 200 else b"unavailable"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the sender died mid-request (a test kills it)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _verify(self, payload: bytes, header: str) -> int:
        try:
            for secret in self.secrets:
                assert secret, "a receiver needs the endpoint's secret"
                stripe.Webhook.construct_event(payload.decode(), header, secret)
        except stripe.SignatureVerificationError as exc:
            with self._lock:
                self.rejected.append(str(exc))
            return 400
        with self._lock:
            self.events.append(json.loads(payload))
            self.headers.append(header)
        return 200

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
