"""Endpoints every service has: ``/healthz`` and the ``/admin/...`` controls.

Admin endpoints need no credentials (the sandbox is a local test fixture) and are never
subject to injected faults, so a test can always turn a fault off again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kassa.sandbox.clock import iso
from kassa.sandbox.faults import FaultConfig, FaultConfigError
from kassa.sandbox.httpserver import ApiError, Request, Response

if TYPE_CHECKING:
    from kassa.sandbox.service import Service


def bad_request(message: str) -> ApiError:
    """Return an ApiError carrying an admin-style 400."""
    return ApiError(Response.json({"error": message}, 400))


def admin_body(request: Request) -> dict[str, Any]:
    """Decode an admin request's JSON object body (empty body = ``{}``)."""
    if not request.body.strip():
        return {}
    try:
        data = request.json()
    except ValueError:
        raise bad_request("body must be JSON") from None
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


def install(service: Service) -> None:
    """Register the health and admin endpoints on ``service``'s router."""
    r = service.router

    def healthz(_: Request, __: dict[str, str]) -> Response:
        return Response.json({"status": "ok", "service": service.name})

    def info(_: Request, __: dict[str, str]) -> Response:
        return Response.json(service.describe())

    def get_faults(_: Request, __: dict[str, str]) -> Response:
        return Response.json(service.faults.to_json())

    def set_faults(request: Request, _: dict[str, str]) -> Response:
        try:
            config = FaultConfig.from_json(admin_body(request))
        except FaultConfigError as e:
            raise bad_request(str(e)) from None
        service.faults.configure(config)
        return Response.json(service.faults.to_json())

    def clear_faults(_: Request, __: dict[str, str]) -> Response:
        service.faults.reset()
        return Response.json(service.faults.to_json())

    def clock_state(ran: int | None = None) -> Response:
        now = service.clock.now()
        body: dict[str, Any] = {"now": now, "iso": iso(now), "offset_s": service.clock.offset}
        if ran is not None:
            body["jobs_run"] = ran
        return Response.json(body)

    def get_clock(_: Request, __: dict[str, str]) -> Response:
        return clock_state()

    def advance_clock(request: Request, _: dict[str, str]) -> Response:
        body = admin_body(request)
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("seconds must be a non-negative number")
        return clock_state(service.scheduler.advance(float(seconds)))

    def get_webhook_url(_: Request, __: dict[str, str]) -> Response:
        return Response.json({"url": service.webhooks.url})

    def set_webhook_url(request: Request, _: dict[str, str]) -> Response:
        url = admin_body(request).get("url")
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
        ):
            raise bad_request("url must be an http(s) URL or null")
        service.webhooks.url = url
        return Response.json({"url": url})

    def deliveries(_: Request, __: dict[str, str]) -> Response:
        return Response.json({"data": service.webhooks.deliveries()})

    def transactions(request: Request, _: dict[str, str]) -> Response:
        return Response.json({"data": service.records(request.query())})

    def get_settings(_: Request, __: dict[str, str]) -> Response:
        return Response.json(service.settings)

    def set_settings(request: Request, _: dict[str, str]) -> Response:
        body = admin_body(request)
        for key, value in body.items():
            if key not in service.settings:
                raise bad_request(f"unknown setting {key!r}; known: {sorted(service.settings)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise bad_request(f"{key} must be a non-negative number")
        service.settings.update({k: float(v) for k, v in body.items()})
        return Response.json(service.settings)

    r.add("GET", "/healthz", healthz)
    r.add("GET", "/admin/info", info)
    r.add("GET", "/admin/faults", get_faults)
    r.add("POST", "/admin/faults", set_faults)
    r.add("PUT", "/admin/faults", set_faults)
    r.add("DELETE", "/admin/faults", clear_faults)
    r.add("GET", "/admin/clock", get_clock)
    r.add("POST", "/admin/clock/advance", advance_clock)
    r.add("GET", "/admin/webhook-url", get_webhook_url)
    r.add("PUT", "/admin/webhook-url", set_webhook_url)
    r.add("POST", "/admin/webhook-url", set_webhook_url)
    r.add("GET", "/admin/webhook-deliveries", deliveries)
    r.add("GET", "/admin/transactions", transactions)
    r.add("GET", "/admin/settings", get_settings)
    r.add("POST", "/admin/settings", set_settings)
