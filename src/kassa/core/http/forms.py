"""Decoding of Stripe-style request parameters.

The stripe SDKs send ``application/x-www-form-urlencoded`` bodies with bracket keys
(``metadata[order]=1``, ``expand[0]=customer``, ``items[0][price]=x``); curl users write
``expand[]=a``. This turns them into nested dicts and lists. JSON bodies are a Kassa extension.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import orjson

from kassa.core.errors import InvalidRequest

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_MAX_DEPTH = 8


def param_name(path: tuple[str | int, ...]) -> str:
    """``("address", "line1")`` → ``address[line1]``, the way Stripe names params in errors."""
    if not path:
        return ""
    head, *rest = path
    return str(head) + "".join(f"[{p}]" for p in rest)


def _split(key: str) -> list[str]:
    m = _KEY.match(key)
    if not m:
        raise InvalidRequest(f"Invalid parameter name: {key}", param=key)
    parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
    if len(parts) > _MAX_DEPTH:
        raise InvalidRequest(f"Parameter nested too deeply: {key}", param=key)
    return parts


def _listify(node: Any, path: tuple[str, ...]) -> Any:
    """Turn dicts whose keys are all indices (or ``[]`` appends) into lists, in index order."""
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v, (*path, k)) for k, v in node.items()}
    if items and all(
        isinstance(k, str) and ((k.isascii() and k.isdigit()) or k.startswith("\x00"))
        for k in items
    ):

        def order(k: str) -> tuple[int, int]:
            return (1, int(k[1:])) if k.startswith("\x00") else (0, int(k))

        return [items[k] for k in sorted(items, key=order)]
    for k in items:
        if k.startswith("\x00"):
            raise InvalidRequest("Cannot mix list and object parameters", param=param_name(path))
    return items


def decode_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest ``[(key, value)]`` pairs by their bracket keys."""
    root: dict[str, Any] = {}
    appends = 0
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            # PostgreSQL cannot store NUL in text, and no legitimate parameter contains one.
            raise InvalidRequest(f"Invalid characters in {key.strip(chr(0))}", param=key)
        parts = _split(key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                # ``[]``: an append; a unique marker keeps arrival order.
                part = f"\x00{appends}"
                appends += 1
            if last:
                if isinstance(node.get(part), dict):
                    raise InvalidRequest(
                        f"Invalid value for {param_name(tuple(parts))}: expected an object",
                        param=param_name(tuple(parts)),
                    )
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    name = param_name(tuple(parts[: i + 1]))
                    raise InvalidRequest(
                        f"Invalid value for {name}: cannot be both a value and an object",
                        param=name,
                    )
                node = child
    # Top-level names stay names even when numeric (``0=x`` is an unknown parameter, not a
    # list); only nested levels become lists.
    return {k: _listify(v, (k,)) for k, v in root.items()}


def decode_query(query: str) -> dict[str, Any]:
    return decode_pairs(parse_qsl(query, keep_blank_values=True))


def decode_body(content_type: str, body: bytes) -> dict[str, Any]:
    """Decode a POST body by its content type: form (default) or JSON."""
    if not body.strip():
        return {}
    if content_type.split(";")[0].strip().lower() == "application/json":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidRequest("A JSON body must be an object")
        _reject_nul(data, ())
        return data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("The request body is not valid UTF-8") from exc
    return decode_pairs(parse_qsl(text, keep_blank_values=True))


def _reject_nul(node: Any, path: tuple[str, ...]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if "\x00" in k:
                raise InvalidRequest("Invalid characters in a parameter name", param=k)
            _reject_nul(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _reject_nul(v, (*path, str(i)))
    elif isinstance(node, str) and "\x00" in node:
        raise InvalidRequest(f"Invalid characters in {param_name(path)}", param=param_name(path))
