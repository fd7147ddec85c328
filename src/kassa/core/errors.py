"""The error tree. Every failure a client can cause is a ``KassaError`` subclass carrying the
HTTP status and Stripe's ``type``/``code``/``param``; one handler renders them (``core.http``).
"""

from __future__ import annotations

from typing import Any


class KassaError(Exception):
    """Base of every error rendered to API clients in Stripe's shape."""

    status: int = 400
    type: str = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` document Stripe's SDKs parse."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://docs.kassa.dev/error-codes#{self.code}"
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(KassaError):
    """400: the request is malformed or names something that cannot be done."""


class ResourceMissing(KassaError):
    status = 404

    def __init__(self, kind: str, object_id: str, param: str = "id") -> None:
        super().__init__(f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


class AuthenticationFailed(KassaError):
    status = 401


class PermissionDenied(KassaError):
    status = 403


class RateLimited(KassaError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many requests hit the API too quickly. Please retry after a short delay.",
            code="rate_limit",
            headers={"Retry-After": str(retry_after)},
        )


class IdempotencyMismatch(KassaError):
    type = "idempotency_error"

    def __init__(self, key: str) -> None:
        super().__init__(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request.",
        )


class IdempotencyKeyInUse(KassaError):
    status = 409

    def __init__(self, key: str) -> None:
        super().__init__(
            f"There is currently another in-progress request using this Idempotency-Key "
            f"('{key}'). Please try again later.",
            code="idempotency_key_in_use",
            headers={"Stripe-Should-Retry": "true"},
        )


class ApiError(KassaError):
    """500: something on Kassa's side failed; the client may retry with the same key."""

    status = 500
    type = "api_error"
