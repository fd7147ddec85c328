"""A small HTTP/1.1 server for the sandbox services, on asyncio and httptools.

Why not uvicorn and ASGI: the sandbox must answer thousands of authorisations per second from
one process, and it must misbehave like a real network peer — drop a connection without an
answer, or apply an operation and then hang. A protocol object that calls a plain function per
request gives both; no task is created on the fast path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import httptools
import orjson

from kassa.sandbox.faults import FaultKind, FaultPlan

log = logging.getLogger("kassa.sandbox.http")

MAX_BODY_BYTES = 1 << 20
# A client that pipelines more than this many requests has to wait for answers first.
MAX_PIPELINED = 32

_STATUS_LINES = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}


class Request:
    """One parsed HTTP request; header names are lower-case."""

    __slots__ = ("body", "headers", "method", "path", "query_string")

    def __init__(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """Return a header's value by its lower-case name, or None."""
        return self.headers.get(name)

    def query(self) -> dict[str, str]:
        """Return the query string's parameters (the last value of a repeated name wins)."""
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    def json(self) -> Any:
        """Decode the body as JSON; raises ValueError if it is not JSON."""
        return orjson.loads(self.body)

    def form(self) -> dict[str, str]:
        """Decode a form-encoded body; raises ValueError if it is not UTF-8."""
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


class Response:
    """A complete HTTP response: status, body, content type and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = dict(headers) if headers else None

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Build a JSON response."""
        return cls(status, orjson.dumps(data), "application/json", headers)

    @classmethod
    def form(
        cls, fields: Mapping[str, str], status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Build a form-encoded (name=value&…) response."""
        return cls(status, urlencode(fields).encode(), "application/x-www-form-urlencoded", headers)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        """Build a UTF-8 text response."""
        return cls(status, text.encode(), f"{content_type}; charset=utf-8")

    @classmethod
    def html(cls, page: str, status: int = 200) -> Response:
        """Build an HTML page response."""
        return cls.text(page, status, "text/html")

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> Response:
        """Build a redirect to ``location``."""
        return cls(status, b"", "text/plain", {"location": location})

    def with_header(self, name: str, value: str) -> Response:
        """Return a copy of this response with one more header."""
        headers = dict(self.headers or {})
        headers[name] = value
        return Response(self.status, self.body, self.content_type, headers)


def add_query(url: str, params: Mapping[str, str]) -> str:
    """Return ``url`` with ``params`` appended to its query string (for redirects)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class ApiError(Exception):
    """Raised by a handler to answer with ``response`` (in the service's own error format)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[[Request, dict[str, str]], Response]
_NO_PARAMS: dict[str, str] = {}


class Router:
    """Maps method and path (with ``{name}`` segments) to a handler."""

    def __init__(self, not_found: Callable[[Request], Response]) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._patterns: list[tuple[str, tuple[str, ...], Handler]] = []
        self._not_found = not_found

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register ``handler`` for ``method`` and ``pattern`` (e.g. ``/v1/payments/{id}``)."""
        if "{" not in pattern:
            self._exact[(method, pattern)] = handler
        else:
            self._patterns.append((method, tuple(pattern.strip("/").split("/")), handler))

    def dispatch(self, request: Request) -> Response:
        """Run the matching handler; ApiError becomes its response, a crash a 500."""
        try:
            handler = self._exact.get((request.method, request.path))
            if handler is not None:
                return handler(request, _NO_PARAMS)
            return self._dispatch_pattern(request)
        except ApiError as e:
            return e.response
        except Exception:
            log.exception("handler crashed on %s %s", request.method, request.path)
            return Response.json({"error": "internal sandbox error"}, 500)

    def _dispatch_pattern(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        path_matched = False
        for method, segments, handler in self._patterns:
            if len(segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for seg, part in zip(segments, parts, strict=True):
                if seg.startswith("{"):
                    if not part:
                        break
                    params[seg[1:-1]] = part
                elif seg != part:
                    break
            else:
                path_matched = True
                if method == request.method:
                    return handler(request, params)
        if path_matched:
            return Response.json({"error": "method not allowed"}, 405)
        return self._not_found(request)


class Endpoint(Protocol):
    """What the server needs from a service."""

    def handle(self, request: Request) -> Response:
        """Answer a request (this is where the operation is applied)."""

    def fault_plan(self, request: Request) -> FaultPlan | None:
        """Return the injected fault for this request, or None to answer normally."""

    def error_response(self, status: int) -> Response:
        """Return the service's answer for an injected error status."""


def _encode(response: Response, keep_alive: bool) -> bytes:
    status_line = _STATUS_LINES.get(response.status)
    if status_line is None:
        status_line = f"HTTP/1.1 {response.status} Unknown\r\n".encode()
    head = b"%scontent-type: %s\r\ncontent-length: %d\r\n" % (
        status_line,
        response.content_type.encode("latin-1"),
        len(response.body),
    )
    if response.headers:
        head += "".join(f"{k}: {v}\r\n" for k, v in response.headers.items()).encode("latin-1")
    if not keep_alive:
        head += b"connection: close\r\n"
    return head + b"\r\n" + response.body


class _Connection(asyncio.Protocol):
    """One client connection: parses requests and answers them in order."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[tuple[Request, bool]] = deque()
        self._busy = False
        self._draining = False
        self._paused = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()
        self._server.connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(400, "upgrades are not supported")
        except httptools.HttpParserError:
            self._reject(400, "malformed HTTP request")

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        # curl asks before sending bodies over 1 KiB; answering saves it a one-second wait.
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size <= MAX_BODY_BYTES:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._body_size > MAX_BODY_BYTES:
            self._reject(413, "request body too large")
            return
        raw_path, _, query = self._url.partition(b"?")
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = unquote(path)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            self._parser.get_method().decode("ascii"),
            path,
            query.decode("latin-1"),
            self._headers,
            body,
        )
        self._queue.append((request, self._parser.should_keep_alive()))
        if len(self._queue) > MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._drain()

    # answering

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and not self._busy and self._transport is not None:
                request, keep_alive = self._queue.popleft()
                self._busy = True
                self._server.dispatch(self, request, keep_alive)
            if self._paused and len(self._queue) < MAX_PIPELINED and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
        finally:
            self._draining = False

    def respond(self, response: Response, keep_alive: bool) -> None:
        """Send the answer to the request being served and move on to the next one."""
        self._busy = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(_encode(response, keep_alive))
        if not keep_alive:
            transport.close()
            return
        self._drain()

    def drop(self) -> None:
        """Reset the connection without answering, as a crashed peer would."""
        self._busy = False
        if self._transport is not None:
            self._transport.abort()

    def _reject(self, status: int, message: str) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_encode(Response.json({"error": message}, status), False))
            self._transport.close()


class HttpServer:
    """Serves one :class:`Endpoint` on one port, applying its injected faults."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port) and return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, reuse_address=True, backlog=1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def dispatch(self, conn: _Connection, request: Request, keep_alive: bool) -> None:
        """Answer ``request`` on ``conn``, now or later, as the fault plan says."""
        plan = self.endpoint.fault_plan(request)
        if plan is None:
            conn.respond(self.endpoint.handle(request), keep_alive)
        elif plan.latency_s > 0:
            self._later(plan.latency_s, self._execute, conn, request, keep_alive, plan)
        else:
            self._execute(conn, request, keep_alive, plan)

    def _execute(
        self, conn: _Connection, request: Request, keep_alive: bool, plan: FaultPlan
    ) -> None:
        # The operation is applied even if the client already gave up during the latency:
        # a real PSP does not notice a caller's timeout either.
        if plan.kind is FaultKind.RESET:
            conn.drop()
        elif plan.kind is FaultKind.ERROR:
            if plan.apply:
                self.endpoint.handle(request)
            conn.respond(self.endpoint.error_response(plan.status), keep_alive)
        elif plan.kind is FaultKind.TIMEOUT:
            response = self.endpoint.handle(request)
            self._later(plan.hang_s, conn.respond, response, keep_alive)
        else:
            conn.respond(self.endpoint.handle(request), keep_alive)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(*args)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    async def close(self) -> None:
        """Stop listening, cancel delayed answers and drop every open connection."""
        if self._server is not None:
            self._server.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for conn in list(self.connections):
            conn.drop()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
