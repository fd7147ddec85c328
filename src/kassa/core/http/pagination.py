"""Stripe list conventions: ``limit`` (1–100, default 10), ``starting_after`` /
``ending_before`` cursors (object ids, exclusive of each other), newest first, ``has_more``.

Ids sort by creation time (``core.ids``), so a page is a keyset query on the id alone."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from kassa.core.db import Connection, Record
from kassa.core.errors import InvalidRequest
from kassa.core.http.params import Expand, Params

T = TypeVar("T")


# Unix seconds from 1970 to the end of year 9999, the range PostgreSQL and Python share.
Timestamp = Annotated[int, Field(ge=0, le=253_402_300_798)]


class RangeFilter(BaseModel):
    """``created[gt]=…`` style bounds on a unix-seconds field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    gt: Timestamp | None = None
    gte: Timestamp | None = None
    lt: Timestamp | None = None
    lte: Timestamp | None = None

    def sql(self, column: str, args: list[Any]) -> list[str]:
        """SQL conditions (with ``$n`` placeholders appended to ``args``) for these bounds.

        ``created`` is whole seconds while the column keeps microseconds, so each bound is
        turned into a half-open interval on second boundaries: ``gt 5`` means ``>= 6``."""
        out = []
        for op, sym, shift in (("gt", ">=", 1), ("gte", ">=", 0), ("lt", "<", 0), ("lte", "<", 1)):
            value = getattr(self, op)
            if value is not None:
                args.append(datetime.fromtimestamp(value + shift, tz=UTC))
                out.append(f"{column} {sym} ${len(args)}")
        return out


def _range(value: Any) -> Any:
    # ``created=1700000000`` means exactly that second.
    if isinstance(value, str | int) and not isinstance(value, bool):
        return {"gte": value, "lte": value}
    return value


class ListParams(Params):
    limit: int = Field(default=10, ge=1, le=100)
    starting_after: str | None = None
    ending_before: str | None = None
    expand: Expand

    @model_validator(mode="after")
    def _one_cursor(self) -> ListParams:
        if self.starting_after and self.ending_before:
            raise InvalidRequest(
                "You may only specify one of these parameters: starting_after, ending_before.",
                param="starting_after",
            )
        return self

    def page_sql(self, id_column: str, args: list[Any]) -> tuple[list[str], str, int]:
        """Conditions, ORDER BY and LIMIT (one extra row, to learn ``has_more``)."""
        if self.ending_before:
            args.append(self.ending_before)
            return [f"{id_column} > ${len(args)}"], f"{id_column} ASC", self.limit + 1
        conds = []
        if self.starting_after:
            args.append(self.starting_after)
            conds.append(f"{id_column} < ${len(args)}")
        return conds, f"{id_column} DESC", self.limit + 1

    def page(self, rows: Sequence[T]) -> tuple[list[T], bool]:
        """Trim the extra row and restore newest-first order."""
        has_more = len(rows) > self.limit
        page = list(rows[: self.limit])
        if self.ending_before:
            page.reverse()
        return page, has_more


def list_object(
    url: str, items: Sequence[T], has_more: bool, render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [render(i) for i in items],
        "has_more": has_more,
        "url": url,
    }


# ``created[gt]=…`` or ``created=<unix seconds>`` on list endpoints.
Created = Annotated[RangeFilter | None, BeforeValidator(_range)]


async def fetch_page(
    conn: Connection,
    table: str,
    page: ListParams,
    equals: dict[str, Any],
    *,
    where: Sequence[str] = (),
    created: RangeFilter | None = None,
) -> list[Record]:
    """One page of ``table`` (a name from the calling repository, never from a client):
    rows whose columns equal ``equals`` (a None value is no filter), that meet the fixed
    ``where`` conditions and the ``created`` bounds, newest first, plus one to tell
    ``has_more``. Every domain's list endpoint reads through this one keyset query."""
    args: list[Any] = []
    conditions = list(where)
    for column, value in equals.items():
        if value is not None:
            args.append(value)
            conditions.append(f"{column} = ${len(args)}")
    if created is not None:
        conditions += created.sql("created_at", args)
    page_conditions, order, limit = page.page_sql("id", args)
    clause = " AND ".join(conditions + page_conditions) or "true"
    rows: list[Record] = await conn.fetch(
        f"SELECT * FROM {table} WHERE {clause} ORDER BY {order} LIMIT {limit}", *args
    )
    return rows
