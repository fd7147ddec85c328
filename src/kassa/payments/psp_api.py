"""``POST /psp/{connector}/webhooks``: where PSPs send their notifications. No API key — each
request is authenticated by the PSP's own signature, which the connector verifies."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kassa.connectors.base import InvalidNotification
from kassa.connectors.registry import UnknownConnector
from kassa.core.errors import AuthenticationFailed, InvalidRequest
from kassa.payments.service import psp_events
from kassa.payments.service.context import Payments


async def receive_notification(request: Request) -> Response:
    payments: Payments = request.app.state.payments
    connector = request.path_params["connector"]
    try:
        ack = await psp_events.receive(
            payments, connector, await request.body(), dict(request.headers)
        )
    except UnknownConnector:
        raise InvalidRequest(f"No such connector: '{connector}'", status=404) from None
    except InvalidNotification as exc:
        raise AuthenticationFailed(f"Invalid notification: {exc}") from None
    return Response(ack.body, status_code=ack.status, media_type=ack.content_type)


routes = [Route("/psp/{connector}/webhooks", receive_notification, methods=["POST"])]
