"""Who is calling and with what: the per-request context every Stripe-style route receives.

Authentication itself belongs to the merchants domain; the app wires it in through
``app.state.authenticate`` so ``core`` never imports a domain."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import structlog
from starlette.requests import Request

from kassa.core.errors import AuthenticationFailed, PermissionDenied, RateLimited
from kassa.core.http import idempotency
from kassa.core.http.forms import decode_body, decode_query
from kassa.core.http.idempotency import IdempotencyKey
from kassa.core.http.ratelimit import RateLimiter

Access = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """What an API key proves: which account, which mode, and what it may touch."""

    key_id: str
    merchant_id: str
    livemode: bool
    kind: Literal["secret", "publishable", "restricted"]
    permissions: dict[str, str] = field(default_factory=dict)
    platform_admin: bool = False
    display: str = ""  # e.g. "rk_test_…AbCd", safe for error messages

    def may(self, resource: str, access: Access, *, publishable_ok: bool = False) -> bool:
        if self.kind == "secret":
            return True
        if self.kind == "publishable":
            return publishable_ok
        granted = self.permissions.get(resource, "none")
        return granted == "write" or (granted == "read" and access == "read")


Authenticator = Callable[[str], Awaitable[ApiKeyIdentity]]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: identity, decoded parameters and idempotency key."""

    identity: ApiKeyIdentity
    request_id: str
    params: dict[str, Any]
    idempotency: IdempotencyKey | None
    path: str

    @property
    def merchant_id(self) -> str:
        return self.identity.merchant_id

    @property
    def livemode(self) -> bool:
        return self.identity.livemode


def _api_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value, validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            user = ""
        if user:
            return user
    raise AuthenticationFailed(
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    )


async def authenticate_request(
    request: Request, resource: str, *, admin: bool = False, publishable: bool = False
) -> Caller:
    """Authenticate the request for ``resource`` and decode its parameters.

    GET needs read access, anything else write access. ``admin`` restricts the route to
    platform-admin keys (operators' read-only surfaces such as the ledger); ``publishable``
    lets publishable keys in (what a browser may do, e.g. tokenize a card)."""
    authenticate: Authenticator = request.app.state.authenticate
    identity = await authenticate(_api_key(request))
    structlog.contextvars.bind_contextvars(
        merchant_id=identity.merchant_id, livemode=identity.livemode
    )
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.acquire(identity.key_id)
    if wait:
        raise RateLimited(wait)
    method = request.scope["method"]
    access: Access = "read" if method in ("GET", "HEAD") else "write"
    if (admin and not identity.platform_admin) or not identity.may(
        resource, access, publishable_ok=publishable
    ):
        raise PermissionDenied(
            f"The provided key '{identity.display}' does not have the required permissions "
            f"for this endpoint on account '{identity.merchant_id}'. Having the "
            f"'rak_{resource}_{access}' permission would allow this request to continue.",
            code="secret_key_required" if identity.kind == "publishable" else None,
        )
    path: str = request.scope["path"]
    if method == "POST":
        params = decode_body(request.headers.get("content-type", ""), await request.body())
    else:
        params = decode_query(request.scope["query_string"].decode("latin-1"))
    request_id: str = request.state.request_id
    idem = None
    raw_key = request.headers.get("idempotency-key")
    if method == "POST" and raw_key is not None:
        idem = IdempotencyKey(
            merchant_id=identity.merchant_id,
            livemode=identity.livemode,
            key=idempotency.check_key(raw_key),
            fingerprint=idempotency.fingerprint("POST", path, params),
            request_id=request_id,
            ttl=timedelta(hours=request.app.state.settings.idempotency_ttl_hours),
        )
    result = Caller(identity, request_id, params, idem, path)
    request.state.caller = result
    return result


def caller(
    resource: str, *, admin: bool = False
) -> Callable[[Request], Coroutine[Any, Any, Caller]]:
    """``authenticate_request`` as a FastAPI dependency, for routes outside ``StripeRouter``."""

    async def dependency(request: Request) -> Caller:
        return await authenticate_request(request, resource, admin=admin)

    return dependency
