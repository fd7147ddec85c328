"""``GET /payments/3ds/{charge}/return``: where a shopper's browser lands after a 3-D Secure
challenge; ``GET /payments/redirect/{charge}/return``: after a wallet's or BNPL provider's
page. No API key — the charge id (unguessable) names the attempt, and the PSP decides,
from the signed result the shopper carries, whether it was authenticated."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from kassa.payments.service import authentication, redirects
from kassa.payments.service.context import Payments


def _redirect_status(status: str) -> str:
    return {
        "succeeded": "succeeded",
        "requires_capture": "succeeded",
        "processing": "processing",
    }.get(status, "failed")


async def authentication_return(request: Request) -> Response:
    payments: Payments = request.app.state.payments
    intent, return_url = await authentication.complete_authentication(
        payments, request.path_params["charge"], dict(request.query_params)
    )
    return _back_to_merchant(intent, return_url)


async def provider_return(request: Request) -> Response:
    """Back from a wallet's or BNPL provider's page (approved or cancelled alike: Kassa asks
    the provider which)."""
    payments: Payments = request.app.state.payments
    intent, return_url = await redirects.shopper_returned(
        payments, request.path_params["charge"], dict(request.query_params)
    )
    return _back_to_merchant(intent, return_url)


def _back_to_merchant(intent: dict[str, Any], return_url: str | None) -> Response:
    outcome = _redirect_status(intent["status"])
    if not return_url:
        return HTMLResponse(f"<p>Authentication finished: {outcome}. You may close this page.</p>")
    query = urlencode(
        {
            "payment_intent": intent["id"],
            "payment_intent_client_secret": intent["client_secret"],
            "redirect_status": outcome,
        }
    )
    separator = "&" if "?" in return_url else "?"
    return RedirectResponse(f"{return_url}{separator}{query}", status_code=303)


routes = [
    Route("/payments/3ds/{charge}/return", authentication_return, methods=["GET", "POST"]),
    Route("/payments/redirect/{charge}/return", provider_return, methods=["GET", "POST"]),
]
