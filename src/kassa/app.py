"""The FastAPI application: mounts every domain's router and wires cross-cutting pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.responses import Response

from kassa.config import Settings, get_settings
from kassa.connectors.configuration import load_configuration
from kassa.connectors.policy import Resilience
from kassa.connectors.registry import ConnectorRegistry
from kassa.connectors.routing.api import router as routing_router
from kassa.core import logging as kassa_logging
from kassa.core import metrics
from kassa.core.db import Database
from kassa.core.http import handlers
from kassa.core.http.middleware import RequestContextMiddleware
from kassa.core.http.ratelimit import RateLimiter
from kassa.core.http.responses import JSON
from kassa.core.http.routing import openapi_paths
from kassa.customers.api import router as customers_router
from kassa.events.api import router as events_router
from kassa.events.endpoints_api import router as webhook_endpoints_router
from kassa.ledger.api import router as ledger_router
from kassa.merchants.api import router as merchants_router
from kassa.merchants.service import Authenticator
from kassa.payments import api as payments_api
from kassa.payments import psp_api, redirect_api
from kassa.payments.service import attempts
from kassa.payments.service.context import Payments
from kassa.vault.api import customer_router as vault_customer_router
from kassa.vault.api import router as vault_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    kassa_logging.configure(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.database_url:
            raise RuntimeError("KASSA_DATABASE_URL is not set (use `kassa up` for a local run)")
        db = await Database.connect(
            settings.database_url, settings.db_pool_min, settings.db_pool_max
        )
        app.state.db = db
        app.state.authenticate = Authenticator(db)
        configuration = load_configuration(settings.connectors_file, settings.sandbox_manifest)
        connectors = ConnectorRegistry.from_configuration(configuration)
        public_url = settings.public_url or f"http://{settings.api_host}:{settings.api_port}"
        resilience = Resilience.for_connectors(db, configuration.connectors)
        payments = Payments(db, connectors, public_url, resilience=resilience)
        app.state.payments = payments
        unregister = metrics.on_scrape(lambda: attempts.refresh_gauges(payments))
        app.state.connectors = connectors
        try:
            yield
        finally:
            unregister()
            await connectors.close()
            await db.close()

    app = FastAPI(
        title="Kassa API",
        version="2024-06-20",
        description="A Stripe-compatible payment API. Bodies are form-encoded with bracket "
        "keys (as the stripe SDKs send them) or JSON; errors are Stripe error objects.",
        lifespan=lifespan,
        default_response_class=JSON,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    handlers.install(app)
    app.add_middleware(RequestContextMiddleware)
    for router in (
        merchants_router,
        customers_router,
        routing_router,
        events_router,
        webhook_endpoints_router,
        vault_router,
        vault_customer_router,
        payments_api.intents_router,
        payments_api.charges_router,
        payments_api.refunds_router,
        payments_api.balance_router,
        ledger_router,
    ):
        app.router.routes.extend(router.routes)
    app.router.routes.extend(psp_api.routes)
    app.router.routes.extend(redirect_api.routes)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSON:
        return JSON({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSON:
        try:
            await request.app.state.db.fetchval("SELECT 1")
        except Exception as exc:
            return JSON({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSON({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        await metrics.refresh()
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("paths", {}).update(openapi_paths(app.routes))
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            }
            schema["security"] = [{"bearer": []}, {"basic": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
