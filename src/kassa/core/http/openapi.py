"""OpenAPI fragments for Stripe-style routes, which parse their own parameters: the request body
is form-encoded with deepObject brackets (or JSON), GET parameters are in the query string, and
every error is Stripe's error object."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": [
                        "api_error",
                        "card_error",
                        "idempotency_error",
                        "invalid_request_error",
                    ],
                },
                "code": {"type": "string"},
                "decline_code": {"type": "string"},
                "message": {"type": "string"},
                "param": {"type": "string"},
                "doc_url": {"type": "string"},
            },
        }
    },
}

_ERRORS: dict[str, Any] = {
    str(status): {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    for status, text in (
        (400, "Invalid request"),
        (401, "Authentication failed"),
        (403, "Permission denied"),
        (404, "No such object"),
        (409, "Idempotency key in use"),
        (429, "Rate limited"),
        (500, "Kassa error"),
    )
}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline local ``$defs`` so the fragment stands alone inside a route."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                return walk(dict(defs[ref.rsplit("/", 1)[1]]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a POST taking ``model`` as form or JSON body."""
    schema = _inline(_schema(model))
    encoding = {
        name: {"style": "deepObject", "explode": True}
        for name, prop in schema.get("properties", {}).items()
        if _is_structured(prop)
    }
    return {
        "requestBody": {
            "required": bool(schema.get("required")),
            "content": {
                "application/x-www-form-urlencoded": {"schema": schema, "encoding": encoding},
                "application/json": {"schema": schema},
            },
        },
        "responses": _ERRORS,
    }


def query(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a GET taking ``model`` in the query string."""
    schema = _inline(_schema(model))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        p: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if _is_structured(prop):
            p.update(style="deepObject", explode=True)
        parameters.append(p)
    return {"parameters": parameters, "responses": _ERRORS}


def errors_only() -> dict[str, Any]:
    return {"responses": _ERRORS}


def _is_structured(prop: dict[str, Any]) -> bool:
    kinds = [prop.get("type")] + [p.get("type") for p in prop.get("anyOf", [])]
    return "object" in kinds or "array" in kinds
