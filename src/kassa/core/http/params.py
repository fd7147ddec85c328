"""Validation of decoded parameters against a pydantic model, answering bad input the way
Stripe does: one error naming the first offending parameter."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from kassa.core.errors import InvalidRequest
from kassa.core.http.forms import param_name

M = TypeVar("M", bound="Params")

_METADATA_KEYS = 50
_METADATA_KEY_LEN = 40
_METADATA_VALUE_LEN = 500


class Params(BaseModel):
    """Base of every endpoint's parameter model: unknown parameters are errors, as in Stripe."""

    model_config = ConfigDict(extra="forbid", str_max_length=5000, frozen=True)


def _blank_to_none(value: Any) -> Any:
    # Stripe's convention: an empty string unsets a field.
    return None if value == "" else value


def _check_metadata(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, list):  # metadata[0]=x decodes as a list; keys are still strings
        value = {str(i): v for i, v in enumerate(value)}
    if not isinstance(value, dict):
        raise ValueError("metadata must be a hash of keys and values")
    if len(value) > _METADATA_KEYS:
        raise ValueError(f"metadata can have at most {_METADATA_KEYS} keys")
    out: dict[str, str | None] = {}
    for k, v in value.items():
        if len(k) > _METADATA_KEY_LEN:
            raise ValueError(f"metadata keys can be at most {_METADATA_KEY_LEN} characters")
        if isinstance(v, bool | int | float):
            v = str(v).lower() if isinstance(v, bool) else str(v)
        if v is not None and not isinstance(v, str):
            raise ValueError("metadata values must be strings")
        if v is not None and len(v) > _METADATA_VALUE_LEN:
            raise ValueError(f"metadata values can be at most {_METADATA_VALUE_LEN} characters")
        out[k] = None if v == "" else v
    return out


# ``metadata[k]=`` maps k to None, meaning "remove k"; ``metadata=`` is None, "remove all".
Metadata = Annotated[dict[str, str | None] | None, BeforeValidator(_check_metadata)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
Expand = Annotated[list[str], Field(default_factory=list, max_length=100)]


def merge_metadata(
    current: dict[str, str], update: dict[str, str | None] | None, provided: bool
) -> dict[str, str]:
    """Apply a metadata update: keys set to None are removed; ``metadata=""`` clears all."""
    if not provided:
        return current
    if update is None:
        return {}
    merged = dict(current)
    for k, v in update.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    if len(merged) > _METADATA_KEYS:
        raise InvalidRequest(f"metadata can have at most {_METADATA_KEYS} keys", param="metadata")
    return merged


def _message(err: dict[str, Any], name: str) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"Received unknown parameter: {name}"
    if kind == "missing":
        return f"Missing required param: {name}."
    if kind == "value_error":
        return f"Invalid {name}: {str(err['msg']).removeprefix('Value error, ')}"
    if kind.startswith("int") or kind.startswith("bool") or kind.startswith("float"):
        return f"Invalid {kind.split('_')[0]}: {err.get('input')!s:.100}"
    return f"Invalid value for {name}: {err['msg']}"


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` into ``model`` or raise a 400 naming the first bad parameter."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        name = param_name(loc)
        raise InvalidRequest(_message(dict(err), name), param=name or None) from None
