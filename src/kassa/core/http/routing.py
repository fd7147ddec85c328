"""Stripe-style routes: authenticate, decode parameters, call the handler, render JSON.

These are plain Starlette routes rather than FastAPI path operations: Kassa parses its own
form-encoded parameters, so FastAPI's dependency and validation machinery would only add cost
(about a quarter of a request's CPU in profiles). Each route keeps the metadata the OpenAPI
document is generated from (``openapi_paths``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from kassa.core.http import openapi
from kassa.core.http.context import Caller, authenticate_request
from kassa.core.http.responses import JSON

Handler = Callable[[Request, Caller], Awaitable[dict[str, Any] | Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None


class StripeRoute(Route):
    """A route that also describes itself for the OpenAPI document."""

    def __init__(self, operation: Operation, endpoint: Callable[[Request], Awaitable[Response]]):
        super().__init__(operation.path, endpoint, methods=[operation.method])
        self.operation = operation


class StripeRouter:
    """Collects a domain's routes; ``resource`` is what restricted keys grant access to."""

    def __init__(self, prefix: str, *, resource: str, tag: str, admin: bool = False) -> None:
        self.prefix = prefix
        self.resource = resource
        self.tag = tag
        self.admin = admin
        self.routes: list[StripeRoute] = []

    def _add(
        self,
        method: str,
        path: str,
        body: type[BaseModel] | None,
        query: type[BaseModel] | None,
        publishable: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            resource, admin = self.resource, self.admin

            async def endpoint(request: Request) -> Response:
                c = await authenticate_request(
                    request, resource, admin=admin, publishable=publishable
                )
                result = await handler(request, c)
                return result if isinstance(result, Response) else JSON(result)

            summary = (handler.__doc__ or handler.__name__).strip().splitlines()[0]
            op = Operation(method, self.prefix + path, summary, self.tag, body, query)
            self.routes.append(StripeRoute(op, endpoint))
            return handler

        return register

    def get(self, path: str, query: type[BaseModel] | None = None) -> Callable[[Handler], Handler]:
        return self._add("GET", path, None, query)

    def post(
        self, path: str, body: type[BaseModel], *, publishable: bool = False
    ) -> Callable[[Handler], Handler]:
        """``publishable=True``: publishable keys may call it too (browser-side actions)."""
        return self._add("POST", path, body, None, publishable)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, None, None)


def openapi_paths(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The ``paths`` of the OpenAPI document for every ``StripeRoute``."""
    paths: dict[str, Any] = {}
    for route in routes:
        if not isinstance(route, StripeRoute):
            continue
        op = route.operation
        spec: dict[str, Any]
        if op.body is not None:
            spec = openapi.body(op.body)
        elif op.query is not None:
            spec = openapi.query(op.query)
        else:
            spec = openapi.errors_only()
        spec = {**spec, "parameters": list(spec.get("parameters", []))}
        for name in re.findall(r"{(\w+)}", op.path):
            spec["parameters"].append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        if not spec["parameters"]:
            del spec["parameters"]
        spec["summary"] = op.summary
        spec["tags"] = [op.tag]
        spec["operationId"] = f"{op.method.lower()}_{op.path.strip('/').replace('/', '_')}"
        spec["responses"] = {
            "200": {
                "description": "The object",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            **spec["responses"],
        }
        paths.setdefault(op.path, {})[op.method.lower()] = spec
    return paths
