"""A client for the 3-D Secure server (Veriquay in the sandbox) that acquirers without their own
challenge flow rely on: create an authentication for a card and amount, and get either a
signed result at once (frictionless) or a challenge page to send the shopper to.

Its format lives here and nowhere else; acquirer adapters use ``ThreeDSClient.begin``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson

from kassa.connectors import http
from kassa.connectors.base import Card, OutcomeUnknown, Rejected
from kassa.connectors.configuration import ThreeDSServer, Timeouts

RESULT_PARAM = "threeDSResult"  # the query parameter the shopper comes back with


@dataclass(frozen=True, slots=True)
class Authentication:
    """An authentication's state: ``Y`` authenticated (``result`` is the signed token to hand
    the acquirer), ``N`` not authenticated, ``C`` waiting for the shopper at
    ``challenge_url``."""

    id: str
    status: str
    challenge_url: str | None
    result: str | None


class ThreeDSClient:
    """Creates authentications on one 3-D Secure server."""

    def __init__(
        self, server: ThreeDSServer, client: httpx.AsyncClient, timeouts: Timeouts
    ) -> None:
        self._server = server
        self._client = client
        self._timeout = http.timeout(timeouts.authorize, timeouts.connect, timeouts.pool)

    async def begin(
        self,
        card: Card,
        amount: int,
        currency: str,
        return_url: str | None,
        reference: str,
        *,
        off_session: bool,
    ) -> Authentication:
        """Authenticate ``card`` for ``amount``; ``reference`` is also the idempotency key, so
        a retried call finds the same authentication."""
        body = {
            "card_number": card.number,
            "amount": amount,
            "currency": currency.upper(),
            "return_url": return_url,
            "merchant_reference": reference,
            "recurring": off_session,
        }
        response = await http.send(
            self._client,
            "POST",
            f"{self._server.base_url}/v1/authentications",
            what="threeds authenticate",
            timeouts=self._timeout,
            content=orjson.dumps(body),
            headers={
                "authorization": f"Bearer {self._server.api_key}",
                "content-type": "application/json",
                "idempotency-key": f"{reference}:3ds",
            },
        )
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise OutcomeUnknown(
                f"threeds authenticate: unreadable answer {response.status_code}"
            ) from exc
        if response.status_code != 201 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            raise Rejected(f"threeds authenticate: HTTP {response.status_code}", str(code))
        return Authentication(
            id=str(data.get("id")),
            status=str(data.get("status")),
            challenge_url=data.get("challenge_url"),
            result=data.get("result"),
        )
