"""The base of every sandbox service: routing, admin endpoints, faults, settings, webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kassa.sandbox import admin
from kassa.sandbox.clock import DAY
from kassa.sandbox.faults import FaultPlan, Faults
from kassa.sandbox.httpserver import ApiError, Request, Response, Router
from kassa.sandbox.idempotency import IdempotencyStore
from kassa.sandbox.webhooks import WebhookFormat, WebhookSender
from kassa.sandbox.world import World

_GATEWAY_PAGES = {
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
}


class Service:
    """One simulated company's HTTP service.

    Subclasses set ``name``/``title``, register their routes on ``self.router`` and describe
    their credentials, records and error format. Every service gets ``/healthz`` and the
    ``/admin/...`` endpoints, which faults never touch.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    # Behaviour knobs exposed at /admin/settings, in seconds unless the name says otherwise.
    default_settings: ClassVar[Mapping[str, float]] = {}

    def __init__(self, world: World, webhook_format: WebhookFormat) -> None:
        self.world = world
        self.clock = world.clock
        self.scheduler = world.scheduler
        self.faults = Faults(world.seed, self.name)
        self.settings: dict[str, float] = dict(self.default_settings)
        self.router = Router(self._not_found)
        self.webhooks = WebhookSender(world.scheduler, self.faults, webhook_format, world.http)
        self.idempotency = IdempotencyStore(self.clock)
        self.base_url = ""
        admin.install(self)

    # what the HTTP server calls

    def handle(self, request: Request) -> Response:
        """Answer one request."""
        return self.router.dispatch(request)

    def fault_plan(self, request: Request) -> FaultPlan | None:
        """Return the injected fault for a business request (never for admin or health)."""
        if self.faults.inactive:
            return None
        path = request.path
        if path.startswith("/admin/") or path == "/healthz":
            return None
        return self.faults.plan(path)

    def error_response(self, status: int) -> Response:
        """Answer for an injected error: gateway pages for 502/503, the API's own otherwise."""
        page = _GATEWAY_PAGES.get(status)
        if page is not None:
            return Response.html(page, status)
        return self.api_error_response(status)

    # what subclasses describe

    def api_error_response(self, status: int) -> Response:
        """The service's own body for an injected 500 or 429."""
        headers = {"retry-after": "1"} if status == 429 else None
        message = "too many requests" if status == 429 else "internal error"
        return Response.json({"error": {"status": status, "message": message}}, status, headers)

    def credentials(self) -> dict[str, str]:
        """Return the credentials a client needs."""
        raise NotImplementedError

    def webhook_secret(self) -> str:
        """Return the secret that signs this service's notifications."""
        raise NotImplementedError

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Return the service's own records for /admin/transactions (``reference`` filters)."""
        raise NotImplementedError

    def start(self) -> None:
        """Schedule recurring work; called once when the sandbox starts."""
        self.scheduler.after(DAY, self._prune, "idempotency prune")

    def _prune(self) -> None:
        self.idempotency.prune()
        self.scheduler.after(DAY, self._prune, "idempotency prune")

    def describe(self) -> dict[str, Any]:
        """Return this service's manifest entry."""
        return {
            "name": self.name,
            "title": self.title,
            "base_url": self.base_url,
            "credentials": self.credentials(),
            "webhook_secret": self.webhook_secret(),
            "webhook_url": self.webhooks.url,
        }

    # helpers

    def _not_found(self, request: Request) -> Response:
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    def json_body(self, request: Request, error: Response) -> dict[str, Any]:
        """Decode a JSON object body, or raise ApiError with ``error``."""
        try:
            data = request.json()
        except ValueError:
            raise ApiError(error) from None
        if not isinstance(data, dict):
            raise ApiError(error)
        return data
