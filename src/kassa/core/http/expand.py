"""``expand[]``: replace an id in a response by the object it names, along dotted paths (up to
four levels; ``data.x`` on lists). Domains register what can be expanded on their objects;
anything else is a 400, checked before the request does anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kassa.core.db import Database
from kassa.core.errors import InvalidRequest

# (db, merchant_id, livemode, object id) -> the object, or None when it does not exist.
Resolver = Callable[[Database, str, bool, str], Awaitable[dict[str, Any] | None]]

_MAX_DEPTH = 4


@dataclass(frozen=True)
class _Expandable:
    field: tuple[str, ...]  # e.g. ("invoice_settings", "default_payment_method")
    target: str  # the object type it expands into
    resolver: Resolver


_registry: dict[str, list[_Expandable]] = {}


def register(object_type: str, field: str, target: str, resolver: Resolver) -> None:
    """Declare that ``field`` (dotted within the object) of ``object_type`` objects holds the
    id of a ``target`` object that ``resolver`` can load."""
    _registry.setdefault(object_type, []).append(
        _Expandable(tuple(field.split(".")), target, resolver)
    )


def _cannot(path: str) -> InvalidRequest:
    return InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")


def _match(object_type: str, parts: list[str]) -> _Expandable | None:
    for e in _registry.get(object_type, []):
        if tuple(parts[: len(e.field)]) == e.field:
            return e
    return None


def validate(object_type: str, paths: list[str], *, is_list: bool = False) -> None:
    """Check every path against what ``object_type`` (or a list of them) can expand."""
    for path in paths:
        parts = path.split(".")
        if not path or len(parts) > _MAX_DEPTH or any(not p for p in parts):
            raise _cannot(path)
        if is_list:
            if parts[0] != "data" or len(parts) < 2:
                raise _cannot(path)
            parts = parts[1:]
        current = object_type
        while parts:
            e = _match(current, parts)
            if e is None:
                raise _cannot(path)
            parts = parts[len(e.field) :]
            current = e.target


async def _apply(
    db: Database, obj: dict[str, Any], parts: list[str], merchant_id: str, livemode: bool
) -> None:
    e = _match(str(obj.get("object")), parts)
    if e is None:
        return
    holder: Any = obj
    for name in e.field[:-1]:
        holder = holder.get(name) if isinstance(holder, dict) else None
    if not isinstance(holder, dict):
        return
    value = holder.get(e.field[-1])
    if isinstance(value, str):
        value = await e.resolver(db, merchant_id, livemode, value) or value
        holder[e.field[-1]] = value
    rest = parts[len(e.field) :]
    if rest and isinstance(value, dict):
        await _apply(db, value, rest, merchant_id, livemode)


async def expand(
    db: Database, obj: dict[str, Any], paths: list[str], merchant_id: str, livemode: bool
) -> dict[str, Any]:
    """Expand ``paths`` in ``obj`` (an object or a list object) in place and return it."""
    for path in paths:
        parts = path.split(".")
        if obj.get("object") == "list":
            for item in obj.get("data", []):
                await _apply(db, item, parts[1:], merchant_id, livemode)
        else:
            await _apply(db, obj, parts, merchant_id, livemode)
    return obj
