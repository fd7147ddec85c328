"""``GET /payments/3ds/{charge}/return``: where a shopper's browser lands after a 3-D Secure
challenge. No API key — the charge id (unguessable) names the attempt, and the PSP decides,
from the signed result the shopper carries, whether it was authenticated."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from kassa.payments.service import authentication
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


routes = [Route("/payments/3ds/{charge}/return", authentication_return, methods=["GET", "POST"])]
