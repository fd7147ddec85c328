"""Veriquay ACS: a 3-D Secure server with a frictionless path and a challenge page.

A merchant (or an acquirer on its behalf) creates an authentication for a card and amount.
Cards that do not need a challenge are authenticated at once ("frictionless") and the signed
result comes back in the answer. Otherwise the shopper's browser goes to the challenge page,
picks "Authenticate" or "Fail", and is redirected to the return URL with ``threeDSResult``,
a token signed with this service's secret that the acquirers verify.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kassa.sandbox.cards import ThreeDS, luhn_valid, pan_fingerprint, scripted_card
from kassa.sandbox.clock import iso
from kassa.sandbox.httpserver import ApiError, Request, Response, add_query
from kassa.sandbox.idempotency import idempotent
from kassa.sandbox.ids import IdFactory
from kassa.sandbox.service import Service
from kassa.sandbox.signing import sign_token, verify_token
from kassa.sandbox.webhooks import SignedJsonFormat
from kassa.sandbox.world import World

API_KEY = "vq_test_3ds_5KfT2wQm8Rz"
SIGNING_SECRET = "vq_sign_b81c0d6e4a2f4973"


@dataclass(eq=False)
class Authentication:
    """One 3-D Secure authentication of one card for one amount."""

    id: str
    pan: str  # fingerprint, never the number
    last4: str
    amount: int
    currency: str
    return_url: str | None
    merchant_reference: str
    status: str  # C = challenge pending, Y = authenticated, N = not authenticated
    flow: str  # frictionless | challenge
    created_at: float
    eci: str = ""
    cavv: str = ""
    completed_at: float | None = None
    result: str | None = None

    def to_json(self, challenge_url: str | None) -> dict[str, Any]:
        """Return the authentication as the API shows it."""
        return {
            "id": self.id,
            "object": "authentication",
            "status": self.status,
            "flow": self.flow,
            "amount": self.amount,
            "currency": self.currency,
            "card_last4": self.last4,
            "merchant_reference": self.merchant_reference,
            "eci": self.eci or None,
            "authentication_value": self.cavv or None,
            "challenge_url": challenge_url if self.status == "C" else None,
            "result": self.result,
            "created_at": iso(self.created_at),
        }


def _error(status: int, code: str, message: str) -> ApiError:
    return ApiError(Response.json({"error": {"code": code, "message": message}}, status))


class ThreeDSService(Service):
    """The 3-D Secure server (short name ``threeds``)."""

    name = "threeds"
    title = "Veriquay ACS (3-D Secure)"

    def __init__(self, world: World) -> None:
        super().__init__(world, SignedJsonFormat("veriquay-signature", SIGNING_SECRET))
        self._ids = IdFactory(f"{world.seed}/threeds", 14, prefix="3ds_")
        self.authentications: dict[str, Authentication] = {}
        r = self.router
        r.add(
            "POST",
            "/v1/authentications",
            idempotent(
                self.idempotency,
                "idempotency-key",
                self._create,
                lambda: (
                    _error(
                        409, "idempotency_key_reused", "Idempotency-Key reused with another request"
                    ).response
                ),
                lambda r: r.with_header("idempotent-replayed", "true"),
            ),
        )
        r.add("GET", "/v1/authentications/{id}", self._get)
        r.add("GET", "/challenge/{id}", self._challenge_page)
        r.add("POST", "/challenge/{id}", self._challenge_submit)

    def credentials(self) -> dict[str, str]:
        """Bearer API key for the authentication API."""
        return {"api_key": API_KEY}

    def webhook_secret(self) -> str:
        """The secret that signs ``threeDSResult`` tokens (this service sends no webhooks)."""
        return SIGNING_SECRET

    def records(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """All authentications, newest first (``reference`` filters by merchant reference)."""
        ref = query.get("reference")
        return [
            a.to_json(self.challenge_url(a))
            for a in reversed(self.authentications.values())
            if ref is None or a.merchant_reference == ref
        ]

    # used by the acquirers, in-process (they are the same simulated world)

    def begin(
        self,
        pan: str,
        amount: int,
        currency: str,
        return_url: str | None,
        merchant_reference: str,
        *,
        recurring: bool = False,
        challenge: bool = False,
    ) -> Authentication:
        """Start an authentication; frictionless cards are decided at once."""
        need = scripted_card(pan).three_ds
        challenged = challenge or need is ThreeDS.ALWAYS
        challenged = challenged or (need is ThreeDS.UNLESS_RECURRING and not recurring)
        auth = Authentication(
            id=self._ids.next(),
            pan=pan_fingerprint(pan),
            last4=pan[-4:],
            amount=amount,
            currency=currency,
            return_url=return_url,
            merchant_reference=merchant_reference,
            status="C",
            flow="challenge" if challenged else "frictionless",
            created_at=self.clock.now(),
        )
        self.authentications[auth.id] = auth
        if not challenged:
            self._complete(auth, True)
        return auth

    def challenge_url(self, auth: Authentication) -> str:
        """Return the browser URL of an authentication's challenge page."""
        return f"{self.base_url}/challenge/{auth.id}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """Return a result token's payload if this server signed it, else None."""
        return verify_token(SIGNING_SECRET, token)

    def _complete(self, auth: Authentication, success: bool) -> None:
        auth.status = "Y" if success else "N"
        auth.eci = "05" if success else "07"
        auth.cavv = secrets.token_urlsafe(21) if success else ""
        auth.completed_at = self.clock.now()
        auth.result = sign_token(
            SIGNING_SECRET,
            {
                "authentication_id": auth.id,
                "status": auth.status,
                "eci": auth.eci,
                "authentication_value": auth.cavv,
                "pan": auth.pan,
                "amount": auth.amount,
                "currency": auth.currency,
                "ts": int(auth.completed_at),
            },
        )

    # HTTP

    def _create(self, request: Request, _: dict[str, str]) -> Response:
        if request.header("authorization") != f"Bearer {API_KEY}":
            raise _error(401, "unauthorized", "missing or wrong bearer API key")
        body = self.json_body(
            request, Response.json({"error": {"code": "invalid_json", "message": "bad JSON"}}, 400)
        )
        pan = body.get("card_number")
        amount = body.get("amount")
        currency = body.get("currency")
        return_url = body.get("return_url")
        if not isinstance(pan, str) or not luhn_valid(pan):
            raise _error(400, "invalid_card_number", "card_number must be a Luhn-valid number")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise _error(400, "invalid_amount", "amount must be a positive integer (minor units)")
        if not isinstance(currency, str) or len(currency) != 3:
            raise _error(400, "invalid_currency", "currency must be a 3-letter code")
        if return_url is not None and not isinstance(return_url, str):
            raise _error(400, "invalid_return_url", "return_url must be a URL")
        auth = self.begin(
            pan,
            amount,
            currency.upper(),
            return_url,
            str(body.get("merchant_reference", "")),
            recurring=body.get("recurring") is True,
            challenge=body.get("challenge") is True,
        )
        if auth.status == "C" and not return_url:
            raise _error(400, "return_url_required", "this card needs a challenge: give return_url")
        return Response.json(auth.to_json(self.challenge_url(auth)), 201)

    def _find(self, auth_id: str) -> Authentication:
        auth = self.authentications.get(auth_id)
        if auth is None:
            raise _error(404, "not_found", f"no authentication {auth_id}")
        return auth

    def _get(self, request: Request, params: dict[str, str]) -> Response:
        if request.header("authorization") != f"Bearer {API_KEY}":
            raise _error(401, "unauthorized", "missing or wrong bearer API key")
        auth = self._find(params["id"])
        return Response.json(auth.to_json(self.challenge_url(auth)))

    def _challenge_page(self, _: Request, params: dict[str, str]) -> Response:
        auth = self._find(params["id"])
        amount = html.escape(f"{auth.amount} {auth.currency} (minor units)")
        if auth.status != "C":
            return Response.html(_PAGE.format(body=f"<p>Authentication {auth.status}.</p>"))
        form = (
            f"<p>Confirm the payment of {amount} with the card ending "
            f"{html.escape(auth.last4)}.</p>"
            f'<form method="post" action="/challenge/{html.escape(auth.id)}">'
            '<button type="submit" name="action" value="authenticate">Authenticate</button> '
            '<button type="submit" name="action" value="fail">Fail authentication</button>'
            "</form>"
        )
        return Response.html(_PAGE.format(body=form))

    def _challenge_submit(self, request: Request, params: dict[str, str]) -> Response:
        auth = self._find(params["id"])
        try:
            action = request.form().get("action")
        except ValueError:
            action = None
        if action not in ("authenticate", "fail"):
            return Response.html(_PAGE.format(body="<p>Choose authenticate or fail.</p>"), 400)
        if auth.status == "C":
            self._complete(auth, action == "authenticate")
        assert auth.result is not None
        if not auth.return_url:
            return Response.html(_PAGE.format(body=f"<p>Authentication {auth.status}.</p>"))
        return Response.redirect(
            add_query(auth.return_url, {"threeDSResult": auth.result, "authentication_id": auth.id})
        )


_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Veriquay 3-D Secure</title>"
    "</head><body><h1>Veriquay 3-D Secure</h1>{body}</body></html>"
)
