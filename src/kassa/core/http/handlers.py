"""The one place error JSON is built: ``KassaError`` → Stripe's error shape; idempotent
replays → the stored response; unknown routes and crashes → Stripe-shaped 404/405/500."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from kassa.core.errors import InvalidRequest, KassaError
from kassa.core.http.expand import expand
from kassa.core.http.idempotency import Replay
from kassa.core.http.responses import JSON


def error_response(exc: KassaError) -> JSON:
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers)


async def _kassa_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KassaError)
    return error_response(exc)


async def _replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Replay)
    body: dict[str, Any] = exc.body
    caller = getattr(request.state, "caller", None)
    paths = caller.params.get("expand") if caller is not None else None
    if caller is not None and exc.status < 400 and isinstance(paths, list) and paths:
        body = await expand(
            request.app.state.db, body, [str(p) for p in paths], caller.merchant_id, caller.livemode
        )
    return JSON(body, status_code=exc.status, headers={"Idempotent-Replayed": "true"})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: KassaError = InvalidRequest(
            f"Unrecognized request URL ({request.method}: {request.url.path}).", status=404
        )
    elif exc.status_code == 405:
        err = InvalidRequest(
            f"Unrecognized request URL ({request.method}: {request.url.path}). "
            "This endpoint does not accept this method.",
            status=405,
        )
    else:
        err = InvalidRequest(str(exc.detail), status=exc.status_code)
    return error_response(err)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path")]
    return error_response(
        InvalidRequest(
            f"Invalid request: {first.get('msg', 'bad input')}", param=loc[-1] if loc else None
        )
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(KassaError, _kassa_error)
    app.add_exception_handler(Replay, _replay)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
