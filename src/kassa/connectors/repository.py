"""SQL of the connectors domain's own tables: the shared circuit-breaker rows and the
operators' error-policy overrides. Functions take the connection they are given."""

from __future__ import annotations

from typing import Any

from kassa.core.db import Connection, Record

_BREAKER_COLUMNS = (
    "connector, state, opened_at, retry_at, probes_left, probe_until, generation, reason, "
    "updated_at"
)


async def breaker_rows(conn: Connection) -> list[Record]:
    """Every connector's breaker row (a connector without one has never opened)."""
    return list(await conn.fetch(f"SELECT {_BREAKER_COLUMNS} FROM connector_breakers"))


async def lock_breaker(conn: Connection, connector: str) -> Record:
    """The connector's breaker row, created closed if missing, locked until the transaction
    ends (transitions are decided under this lock)."""
    await conn.execute(
        "INSERT INTO connector_breakers (connector, state, updated_at) "
        "VALUES ($1, 'closed', now()) ON CONFLICT (connector) DO NOTHING",
        connector,
    )
    row: Record = await conn.fetchrow(
        f"SELECT {_BREAKER_COLUMNS} FROM connector_breakers WHERE connector = $1 FOR UPDATE",
        connector,
    )
    return row


async def update_breaker(conn: Connection, row: dict[str, Any]) -> None:
    """Write a breaker's new state (``row`` has every column)."""
    await conn.execute(
        "UPDATE connector_breakers SET state = $2, opened_at = $3, retry_at = $4, "
        "probes_left = $5, probe_until = $6, generation = $7, reason = $8, "
        "updated_at = $9 WHERE connector = $1",
        row["connector"],
        row["state"],
        row["opened_at"],
        row["retry_at"],
        row["probes_left"],
        row["probe_until"],
        row["generation"],
        row["reason"],
        row["updated_at"],
    )


async def error_policy_overrides(conn: Connection) -> list[Record]:
    """Every operator override of the error policy, by connector then code."""
    return list(
        await conn.fetch(
            "SELECT connector, code, action, note, updated_at FROM connector_error_policies "
            "ORDER BY connector, code"
        )
    )


async def upsert_error_policy(
    conn: Connection, connector: str, code: str, action: str, note: str | None
) -> None:
    """Create or replace one override."""
    await conn.execute(
        "INSERT INTO connector_error_policies (connector, code, action, note, updated_at) "
        "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (connector, code) DO UPDATE "
        "SET action = EXCLUDED.action, note = EXCLUDED.note, updated_at = now()",
        connector,
        code,
        action,
        note,
    )


async def delete_error_policy(conn: Connection, connector: str, code: str) -> bool:
    """Remove one override; True if there was one."""
    result: str = await conn.execute(
        "DELETE FROM connector_error_policies WHERE connector = $1 AND code = $2",
        connector,
        code,
    )
    return result.endswith(" 1")
