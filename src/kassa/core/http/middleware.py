"""The outermost layer of every request: a ``Request-Id``, one structured log line, metrics.
Plain ASGI (no BaseHTTPMiddleware) to keep the hot path cheap."""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.core.errors import ApiError, InvalidRequest
from kassa.core.http.responses import JSON
from kassa.core.ids import new_id
from kassa.core.metrics import HTTP_LATENCY, HTTP_REQUESTS

_log = structlog.get_logger("kassa.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        idem_key: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                idem_key = value
        started = time.perf_counter()
        status = 0  # 0 until the response starts

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"request-id", request_id.encode()))
                if idem_key is not None and scope["method"] == "POST":
                    headers.append((b"idempotency-key", idem_key))
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if "\x00" in scope["path"]:
                # No object id or route contains NUL, and PostgreSQL could not compare one.
                missing = InvalidRequest("Unrecognized request URL.", status=404)
                await JSON(missing.body(), status_code=404)(scope, receive, send_with_headers)
                return
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # A crash still gets a Stripe-shaped 500 carrying the Request-Id to quote.
            _log.error("unhandled_exception", exc_info=exc)
            if status == 0:
                err = ApiError("An unexpected error occurred on Kassa's side.")
                await JSON(err.body(), status_code=500)(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], template, str(status or 500)).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(elapsed)
            _log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
