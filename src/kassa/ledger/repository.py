"""SQL for the ledger. Posting is one call of ``ledger_post`` (plpgsql, in the migration);
reads probe the per-account indexes; verification recomputes everything from the transfers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kassa.core.db import Connection, Record


async def post(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    now_us: int,
    columns: tuple[list[Any], ...],
    mode: int = 0,
) -> tuple[list[str | None], list[int | None]]:
    """Post one batch: (result code or None for ok, ledger timestamp or None) per transfer."""
    row: Record = await conn.fetchrow(
        "SELECT results, timestamps FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
        " $11, $12, $13, $14, $15)",
        merchant_id,
        livemode,
        now_us,
        *columns,
        mode,
    )
    return list(row["results"]), list(row["timestamps"])


async def insert_accounts(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Create (sub-)accounts that do not exist yet; existing ones are left untouched."""
    await conn.executemany(
        """
        INSERT INTO ledger_accounts (merchant_id, id, shard, livemode, owner, purpose, currency,
            shards, debits_must_not_exceed_credits, credits_must_not_exceed_debits, created_at,
            metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT DO NOTHING
        """,
        rows,
    )


_ACCOUNT_SUMS = """
    SELECT a.merchant_id, a.id, a.livemode, a.owner, a.purpose, a.currency, a.shards,
           bool_or(a.debits_must_not_exceed_credits) AS debits_must_not_exceed_credits,
           bool_or(a.credits_must_not_exceed_debits) AS credits_must_not_exceed_debits,
           bool_or(a.closed) AS closed, min(a.created_at) AS created_at,
           (array_agg(a.metadata))[1] AS metadata,
           sum(a.debits_posted)::bigint AS debits_posted,
           sum(a.credits_posted)::bigint AS credits_posted,
           sum(a.debits_pending)::bigint AS debits_pending,
           sum(a.credits_pending)::bigint AS credits_pending
    FROM ledger_accounts a
"""
_ACCOUNT_GROUP = (
    " GROUP BY a.merchant_id, a.id, a.livemode, a.owner, a.purpose, a.currency, a.shards"
)


async def get_accounts(conn: Connection, merchant_id: str, ids: Sequence[str]) -> list[Record]:
    """Logical accounts by id, counters summed over sub-accounts."""
    rows: list[Record] = await conn.fetch(
        _ACCOUNT_SUMS + " WHERE a.merchant_id = $1 AND a.id = ANY($2::text[])" + _ACCOUNT_GROUP,
        merchant_id,
        list(ids),
    )
    return rows


async def list_accounts(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    *,
    owner: str | None,
    purpose: str | None,
    currency: str | None,
    after: str | None,
    before: str | None,
    limit: int,
) -> list[Record]:
    """A page of one merchant's logical accounts in id order (descending, or ascending before
    a cursor)."""
    args: list[Any] = [merchant_id, livemode]
    conds = ["a.merchant_id = $1", "a.livemode = $2"]
    for column, value in (
        ("owner", owner),
        ("purpose", purpose),
        ("currency", currency),
    ):
        if value is not None:
            args.append(value)
            conds.append(f"a.{column} = ${len(args)}")
    order = "DESC"
    if after is not None:
        args.append(after)
        conds.append(f"a.id < ${len(args)}")
    elif before is not None:
        args.append(before)
        conds.append(f"a.id > ${len(args)}")
        order = "ASC"
    rows: list[Record] = await conn.fetch(
        _ACCOUNT_SUMS
        + " WHERE "
        + " AND ".join(conds)
        + _ACCOUNT_GROUP
        + f" ORDER BY a.id {order} LIMIT {int(limit)}",
        *args,
    )
    return rows


async def balance_as_of(
    conn: Connection, merchant_id: str, account_id: str, shards: int, as_of_us: int
) -> Record:
    """Counters summed over sub-accounts right after the last transfer at or before
    ``as_of_us``: per sub-account, two index probes for the latest leg on either side."""
    row: Record = await conn.fetchrow(
        """
        SELECT coalesce(sum(b.dp), 0)::bigint AS debits_posted,
               coalesce(sum(b.cp), 0)::bigint AS credits_posted,
               coalesce(sum(b.dpend), 0)::bigint AS debits_pending,
               coalesce(sum(b.cpend), 0)::bigint AS credits_pending
        FROM generate_series(0, $3 - 1) AS s(shard)
        CROSS JOIN LATERAL (
            SELECT x.* FROM (
                (SELECT t.ts, t.dr_debits_posted AS dp, t.dr_credits_posted AS cp,
                        t.dr_debits_pending AS dpend, t.dr_credits_pending AS cpend
                 FROM ledger_transfers t
                 WHERE t.merchant_id = $1 AND t.debit_account_id = $2
                   AND t.debit_shard = s.shard AND t.ts <= $4
                 ORDER BY t.ts DESC LIMIT 1)
                UNION ALL
                (SELECT t.ts, t.cr_debits_posted, t.cr_credits_posted, t.cr_debits_pending,
                        t.cr_credits_pending
                 FROM ledger_transfers t
                 WHERE t.merchant_id = $1 AND t.credit_account_id = $2
                   AND t.credit_shard = s.shard AND t.ts <= $4
                 ORDER BY t.ts DESC LIMIT 1)
            ) x ORDER BY x.ts DESC LIMIT 1
        ) b
        """,
        merchant_id,
        account_id,
        shards,
        as_of_us,
    )
    return row


async def totals(
    conn: Connection,
    merchant_id: str,
    livemode: bool,
    owner: str | None,
    purpose: str | None,
    currency: str | None,
) -> list[Record]:
    """Counters per (owner, purpose, currency), summed over sub-accounts: one snapshot."""
    args: list[Any] = [merchant_id, livemode]
    conds = ["merchant_id = $1", "livemode = $2"]
    for column, value in (("owner", owner), ("purpose", purpose), ("currency", currency)):
        if value is not None:
            args.append(value)
            conds.append(f"{column} = ${len(args)}")
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT owner, purpose, currency,
               sum(debits_posted)::bigint AS debits_posted,
               sum(credits_posted)::bigint AS credits_posted,
               sum(debits_pending)::bigint AS debits_pending,
               sum(credits_pending)::bigint AS credits_pending
        FROM ledger_accounts WHERE {" AND ".join(conds)}
        GROUP BY owner, purpose, currency ORDER BY owner, purpose, currency
        """,
        *args,
    )
    return rows


async def close_account(conn: Connection, merchant_id: str, account_id: str) -> int:
    """Mark every sub-account closed (under their row locks, so no batch is mid-way)."""
    result: str = await conn.execute(
        "UPDATE ledger_accounts SET closed = true WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        account_id,
    )
    return int(result.split()[-1])


async def get_transfer(conn: Connection, merchant_id: str, transfer_id: str) -> Record | None:
    row: Record | None = await conn.fetchrow(
        """
        SELECT t.*, r.id AS resolved_by, r.flags AS resolved_flags
        FROM ledger_transfers t
        LEFT JOIN ledger_transfers r
            ON t.flags & 2 <> 0 AND r.merchant_id = t.merchant_id AND r.pending_id = t.id
        WHERE t.merchant_id = $1 AND t.id = $2
        """,
        merchant_id,
        transfer_id,
    )
    return row


async def transfer_position(
    conn: Connection, merchant_id: str, transfer_id: str
) -> tuple[int, str] | None:
    row: Record | None = await conn.fetchrow(
        "SELECT ts, id FROM ledger_transfers WHERE merchant_id = $1 AND id = $2",
        merchant_id,
        transfer_id,
    )
    return (row["ts"], row["id"]) if row else None


async def history(
    conn: Connection,
    merchant_id: str,
    account_id: str,
    shards: int,
    *,
    after: tuple[int, str] | None,
    before: tuple[int, str] | None,
    limit: int,
) -> list[Record]:
    """One account's transfers with the sub-account's counters after each, newest first (or
    oldest first after ``before``): per sub-account and side a short index scan, merged."""
    if before is not None:
        cmp, order, cursor = ">", "ASC", before
    else:
        cmp, order, cursor = "<", "DESC", after or (2**62, "")
    cond = f"(t.ts, t.id) {cmp} ($4, $5::text)"
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT h.* FROM generate_series(0, $3 - 1) AS s(shard)
        CROSS JOIN LATERAL (
            (SELECT t.*, 'debit' AS side, t.debit_shard AS shard,
                    t.dr_debits_posted AS after_debits_posted,
                    t.dr_credits_posted AS after_credits_posted,
                    t.dr_debits_pending AS after_debits_pending,
                    t.dr_credits_pending AS after_credits_pending
             FROM ledger_transfers t
             WHERE t.merchant_id = $1 AND t.debit_account_id = $2 AND t.debit_shard = s.shard
               AND {cond}
             ORDER BY t.ts {order} LIMIT $6)
            UNION ALL
            (SELECT t.*, 'credit', t.credit_shard, t.cr_debits_posted, t.cr_credits_posted,
                    t.cr_debits_pending, t.cr_credits_pending
             FROM ledger_transfers t
             WHERE t.merchant_id = $1 AND t.credit_account_id = $2 AND t.credit_shard = s.shard
               AND {cond}
             ORDER BY t.ts {order} LIMIT $6)
        ) h
        ORDER BY h.ts {order}, h.id {order} LIMIT $6
        """,
        merchant_id,
        account_id,
        shards,
        cursor[0],
        cursor[1],
        limit,
    )
    return rows


async def due_timeouts(
    conn: Connection, now_us: int, limit: int, merchant_id: str | None
) -> list[Record]:
    """Unresolved pending transfers whose timeout has passed, grouped by merchant."""
    rows: list[Record] = await conn.fetch(
        """
        SELECT merchant_id, livemode, pending_id FROM ledger_pending_timeouts
        WHERE expires_at <= $1 AND ($3::text IS NULL OR merchant_id = $3)
        ORDER BY merchant_id, livemode, expires_at LIMIT $2
        """,
        now_us,
        limit,
        merchant_id,
    )
    return rows


# --- verification: everything recomputed from the transfers ---------------------------------

_RESOLVED = """
    SELECT t.*, p.amount AS pending_amount
    FROM ledger_transfers t
    LEFT JOIN ledger_transfers p
        ON t.flags & 12 <> 0 AND p.merchant_id = t.merchant_id AND p.id = t.pending_id
"""

# Each transfer's effect on its two sub-accounts: posted amounts for single and post transfers,
# pending amounts reserved by pending transfers and released by their post or void.
_LEGS = f"""
    WITH t AS ({_RESOLVED} {{where}}),
    legs AS (
        SELECT t.merchant_id, t.debit_account_id AS acc, t.debit_shard AS shard, t.ts, t.id,
               true AS is_dr,
               CASE WHEN t.flags & 10 = 0 THEN t.amount ELSE 0 END AS d_posted,
               CASE WHEN t.flags & 2 <> 0 THEN t.amount
                    WHEN t.flags & 12 <> 0 THEN -coalesce(t.pending_amount, 0) ELSE 0 END
                   AS d_pending,
               t.dr_debits_posted AS s_dp, t.dr_credits_posted AS s_cp,
               t.dr_debits_pending AS s_dpend, t.dr_credits_pending AS s_cpend
        FROM t
        UNION ALL
        SELECT t.merchant_id, t.credit_account_id, t.credit_shard, t.ts, t.id, false,
               CASE WHEN t.flags & 10 = 0 THEN t.amount ELSE 0 END,
               CASE WHEN t.flags & 2 <> 0 THEN t.amount
                    WHEN t.flags & 12 <> 0 THEN -coalesce(t.pending_amount, 0) ELSE 0 END,
               t.cr_debits_posted, t.cr_credits_posted, t.cr_debits_pending,
               t.cr_credits_pending
        FROM t
    )
"""


def _merchant_filter(column: str, merchant_id: str | None) -> str:
    return f"WHERE {column} = $1" if merchant_id is not None else "WHERE $1::text IS NULL"


async def verify_counters(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Sub-accounts whose stored counters differ from the sums of their transfers."""
    where = _merchant_filter("t.merchant_id", merchant_id)
    rows: list[Record] = await conn.fetch(
        _LEGS.format(where=where)
        + f"""
        , sums AS (
            SELECT merchant_id, acc, shard,
                   sum(CASE WHEN is_dr THEN d_posted ELSE 0 END) AS dp,
                   sum(CASE WHEN is_dr THEN 0 ELSE d_posted END) AS cp,
                   sum(CASE WHEN is_dr THEN d_pending ELSE 0 END) AS dpend,
                   sum(CASE WHEN is_dr THEN 0 ELSE d_pending END) AS cpend,
                   max(ts) AS max_ts
            FROM legs GROUP BY merchant_id, acc, shard
        ),
        a AS (SELECT * FROM ledger_accounts a {_merchant_filter("a.merchant_id", merchant_id)})
        SELECT coalesce(a.merchant_id, s.merchant_id) AS merchant_id,
               coalesce(a.id, s.acc) AS account_id, coalesce(a.shard, s.shard) AS shard,
               a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending,
               a.last_ts, s.dp, s.cp, s.dpend, s.cpend, s.max_ts
        FROM a FULL JOIN sums s
            ON s.merchant_id = a.merchant_id AND s.acc = a.id AND s.shard = a.shard
        WHERE a.id IS NULL
           OR a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
           OR a.debits_pending <> coalesce(s.dpend, 0)
           OR a.credits_pending <> coalesce(s.cpend, 0)
           OR a.last_ts < coalesce(s.max_ts, 0)
        LIMIT 100
        """,
        merchant_id,
    )
    return rows


async def verify_running(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Transfer legs whose stored running counters differ from a replay in ledger-time order,
    or that share a timestamp with another leg of the same sub-account."""
    where = _merchant_filter("t.merchant_id", merchant_id)
    rows: list[Record] = await conn.fetch(
        _LEGS.format(where=where)
        + """
        , run AS (
            SELECT l.*,
                sum(CASE WHEN is_dr THEN d_posted ELSE 0 END) OVER w AS dp,
                sum(CASE WHEN is_dr THEN 0 ELSE d_posted END) OVER w AS cp,
                sum(CASE WHEN is_dr THEN d_pending ELSE 0 END) OVER w AS dpend,
                sum(CASE WHEN is_dr THEN 0 ELSE d_pending END) OVER w AS cpend,
                count(*) OVER (PARTITION BY merchant_id, acc, shard, ts) AS same_ts
            FROM legs l
            WINDOW w AS (PARTITION BY merchant_id, acc, shard ORDER BY ts
                         ROWS UNBOUNDED PRECEDING)
        )
        SELECT merchant_id, acc AS account_id, shard, id AS transfer_id, is_dr, same_ts,
               s_dp, dp, s_cp, cp, s_dpend, dpend, s_cpend, cpend
        FROM run
        WHERE same_ts > 1 OR s_dp <> dp OR s_cp <> cp OR s_dpend <> dpend OR s_cpend <> cpend
        LIMIT 100
        """,
        merchant_id,
    )
    return rows


async def verify_zero_sum(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Σ debits and Σ credits per mode and currency, from the account counters."""
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT livemode, currency, count(*) AS sub_accounts,
               sum(debits_posted) AS debits_posted, sum(credits_posted) AS credits_posted,
               sum(debits_pending) AS debits_pending, sum(credits_pending) AS credits_pending
        FROM ledger_accounts a {_merchant_filter("a.merchant_id", merchant_id)}
        GROUP BY livemode, currency ORDER BY livemode, currency
        """,
        merchant_id,
    )
    return rows


async def verify_two_phase(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Posts and voids that do not match their pending transfer; pending transfers whose
    timeout work-list entry is missing or stale."""
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT t.merchant_id, t.id AS transfer_id, 'resolution does not match its pending'
               AS problem
        FROM ledger_transfers t
        LEFT JOIN ledger_transfers p ON p.merchant_id = t.merchant_id AND p.id = t.pending_id
        {_merchant_filter("t.merchant_id", merchant_id)} AND t.flags & 12 <> 0
          AND (p.id IS NULL OR p.flags & 2 = 0
               OR p.debit_account_id <> t.debit_account_id OR p.debit_shard <> t.debit_shard
               OR p.credit_account_id <> t.credit_account_id
               OR p.credit_shard <> t.credit_shard
               OR p.currency <> t.currency OR p.livemode <> t.livemode OR p.ts >= t.ts
               OR (t.flags & 4 <> 0 AND t.amount > p.amount)
               OR (t.flags & 8 <> 0 AND t.amount <> p.amount)
               OR (t.flags & 16 <> 0
                   AND (p.timeout = 0 OR p.ts + p.timeout::bigint * 1000000 > t.ts)))
        UNION ALL
        SELECT p.merchant_id, p.id, 'unresolved pending transfer with a timeout is not tracked'
        FROM ledger_transfers p
        {_merchant_filter("p.merchant_id", merchant_id)} AND p.flags & 2 <> 0 AND p.timeout > 0
          AND NOT EXISTS (SELECT 1 FROM ledger_transfers r
                          WHERE r.merchant_id = p.merchant_id AND r.pending_id = p.id)
          AND NOT EXISTS (SELECT 1 FROM ledger_pending_timeouts o
                          WHERE o.merchant_id = p.merchant_id AND o.pending_id = p.id
                            AND o.expires_at = p.ts + p.timeout::bigint * 1000000)
        UNION ALL
        SELECT o.merchant_id, o.pending_id, 'timeout tracked for a resolved or unknown transfer'
        FROM ledger_pending_timeouts o
        {_merchant_filter("o.merchant_id", merchant_id)}
          AND (NOT EXISTS (SELECT 1 FROM ledger_transfers p
                           WHERE p.merchant_id = o.merchant_id AND p.id = o.pending_id
                             AND p.flags & 2 <> 0)
               OR EXISTS (SELECT 1 FROM ledger_transfers r
                          WHERE r.merchant_id = o.merchant_id AND r.pending_id = o.pending_id))
        LIMIT 100
        """,
        merchant_id,
    )
    return rows


async def verify_journals(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Journal entries whose transfer count is not what was committed; failed ids that are
    also transfers."""
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT coalesce(j.merchant_id, c.merchant_id) AS merchant_id,
               coalesce(j.id, c.journal_id) AS id,
               'journal entry has ' || coalesce(c.n, 0) || ' transfers, expected '
               || coalesce(j.transfer_count::text, 'no entry') AS problem
        FROM (SELECT * FROM ledger_journal_entries j
              {_merchant_filter("j.merchant_id", merchant_id)}) j
        FULL JOIN (SELECT t.merchant_id, t.journal_id, count(*) AS n FROM ledger_transfers t
                   {_merchant_filter("t.merchant_id", merchant_id)}
                     AND t.journal_id IS NOT NULL
                   GROUP BY t.merchant_id, t.journal_id) c
            ON c.merchant_id = j.merchant_id AND c.journal_id = j.id
        WHERE j.id IS NULL OR c.journal_id IS NULL OR c.n <> j.transfer_count
        UNION ALL
        SELECT f.merchant_id, f.id, 'failed id ' || f.result || ' exists as a transfer'
        FROM ledger_failed_transfers f
        JOIN ledger_transfers t ON t.merchant_id = f.merchant_id AND t.id = f.id
        {_merchant_filter("f.merchant_id", merchant_id)}
        LIMIT 100
        """,
        merchant_id,
    )
    return rows


async def verify_accounts(conn: Connection, merchant_id: str | None) -> list[Record]:
    """Logical accounts whose sub-accounts disagree on what the account is, or break a limit."""
    rows: list[Record] = await conn.fetch(
        f"""
        SELECT merchant_id, id, 'sub-accounts disagree or a limit is broken' AS problem
        FROM ledger_accounts a {_merchant_filter("a.merchant_id", merchant_id)}
        GROUP BY merchant_id, id
        HAVING count(DISTINCT (livemode, owner, purpose, currency, shards,
                               debits_must_not_exceed_credits,
                               credits_must_not_exceed_debits)) > 1
            OR count(*) <> max(shards)
            OR bool_or(debits_must_not_exceed_credits
                       AND debits_posted + debits_pending > credits_posted)
            OR bool_or(credits_must_not_exceed_debits
                       AND credits_posted + credits_pending > debits_posted)
        LIMIT 100
        """,
        merchant_id,
    )
    return rows


async def count_rows(conn: Connection, merchant_id: str | None) -> Record:
    row: Record = await conn.fetchrow(
        f"""
        SELECT (SELECT count(*) FROM ledger_accounts a
                {_merchant_filter("a.merchant_id", merchant_id)}) AS sub_accounts,
               (SELECT count(*) FROM ledger_transfers t
                {_merchant_filter("t.merchant_id", merchant_id)}) AS transfers
        """,
        merchant_id,
    )
    return row
