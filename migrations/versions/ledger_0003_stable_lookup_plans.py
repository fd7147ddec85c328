"""Ledger: posting's look-ups use their unique index whatever the statistics.

The posting functions cache one plan per session. Planned while the ledger tables were empty
or never analysed (a fresh install, before autovacuum's first ANALYZE), the look-ups by the
batch's keys ran as a scan of the merchant's whole history with the key in a filter: on such
statistics every estimate is one row, a key `= ANY ($n)` is costed as ten index descents, and
a one-descent scan of the merchant prefix of any index (`ledger_transfers_credit`, the
accounts' (owner, purpose) key) ties with or beats the primary key. A 2-transfer post then
cost O(merchant history) until the next ANALYZE. A full-key equality alone does not settle it
either: at one estimated row it ties with the prefix scan, and a tie is settled by the order of
the indexes, not by which one fits.

So every look-up is driven by the batch's rows, with the whole key in the index condition, in
a shape whose cost cannot tie with a prefix scan:

- ``ledger_resolve`` joins each table to the batch's rows by nested loop (hash and merge joins
  off, batch first: left joins): the full-key probe is parameterised by the batch row and
  repeated per row, which the planner prices below rescanning a merchant prefix for every row
  (a generic plan counts ten rows for an array parameter, whatever the batch).
- The account lock queries take each account id in turn (sorted) and lock its sub-accounts
  ordered by shard: the indexes keyed (merchant, id, shard) return them in that order, any
  other index needs a sort.
- Account counters are written back by tuple id (locked since the lock query, a row keeps its
  tuple id): with sequential scans off, a tuple-id probe per row is the only plan left.
- The trigger checking a transfer's accounts (ledger_0002) orders each probe by the two columns
  the (merchant, id, shard, livemode, currency) index holds after the key, which only that
  index yields without a sort. The expiry list's clean-up probes it from the batch's rows and
  deletes by tuple id.

Results, locking order and every other behaviour are unchanged. Not covered: PostgreSQL's own
check of the foreign key (merchant_id, pending_id) of posts and voids, whose cached plan can
find the pending transfer through a merchant prefix scan in the same way.

Revision ID: ledger_0003
Revises: ledger_0002
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "ledger_0003"
down_revision = "ledger_0002"
branch_labels = None
depends_on = None


def _ledger_0001() -> ModuleType:
    """The function bodies this revision rewrites are ledger_0001's: derived from them here (only
    the statements that change are spelled out), and restored from them by the downgrade."""
    path = Path(__file__).with_name("ledger_0001_ledger.py")
    spec = importlib.util.spec_from_file_location("kassa_migration_ledger_0001", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"ledger_0003: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swap(sql: str, old: str, new: str) -> str:
    if sql.count(old) != 1:
        raise RuntimeError(f"ledger_0003: expected one occurrence of {old[:60]!r}")
    return sql.replace(old, new)


def _replaceable(sql: str) -> str:
    return _swap(sql, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


base = _ledger_0001()

# --- ledger_resolve ------------------------------------------------------------------------

RESOLVE = _swap(
    base.RESOLVE,
    """
-- plpgsql caches the plan per session; every look-up below is one index scan over the batch's
-- keys, joined by hash in the order written, so one plan suits any batch size and any table
-- size (a plan made while a table was still small must not scan it once it is large).
SET join_collapse_limit = 1
SET from_collapse_limit = 1
SET enable_nestloop = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
""",
    """
-- plpgsql caches the plan per session, so it must suit any batch and any table size, made on
-- any statistics (a fresh install plans on empty, never analysed tables). Every look-up below
-- probes the table's unique index with its whole key, once per batch row: a nested loop,
-- batch rows first (left joins in the order written). Costed per batch row, a parameterised
-- probe is cheaper than scanning a merchant prefix for every row, whatever the estimates;
-- with hash or merge joins allowed, one scan of that prefix could win on empty statistics.
SET join_collapse_limit = 1
SET from_collapse_limit = 1
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_material = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
""",
)
RESOLVE = _swap(
    RESOLVE,
    """    s.code, s.journal, s.metadata, s.scode, s.first_i::integer, fi.first::integer,
""",
    """    s.code, s.journal, s.metadata, s.scode, s.first_i::integer,
    -- The pending id's first batch position (subscripts are positions: 1-based arrays, as
    -- everywhere here); a join with the batch's own rows would loop over every pair of them.
    CASE WHEN s.pv AND s.pending_id IS NOT NULL THEN array_position(p_id, s.pending_id) END,
""",
)
RESOLVE = _swap(
    RESOLVE,
    """LEFT JOIN (SELECT b.id, min(b.i) AS first FROM b GROUP BY b.id) fi
    ON s.pv AND fi.id = s.pending_id
-- Each look-up is one index scan over the batch's keys (= ANY), joined by hash: the cost
-- follows the batch, not the merchant's history.
LEFT JOIN (SELECT * FROM ledger_transfers t
           WHERE t.merchant_id = p_merchant AND t.id = ANY (p_id)) e ON e.id = s.id
LEFT JOIN (SELECT f.id FROM ledger_failed_transfers f
           WHERE f.merchant_id = p_merchant AND f.id = ANY (p_id)) f ON f.id = s.id
LEFT JOIN (SELECT j.id FROM ledger_journal_entries j
           WHERE j.merchant_id = p_merchant AND j.id = ANY (p_journal)) j ON j.id = s.journal
LEFT JOIN (SELECT * FROM ledger_transfers t
           WHERE t.merchant_id = p_merchant AND t.id = ANY (p_pending_id)
             AND t.livemode = p_livemode) pt
    ON s.pv AND pt.id = s.pending_id
LEFT JOIN (SELECT t.pending_id, t.flags FROM ledger_transfers t
           WHERE t.merchant_id = p_merchant AND t.pending_id = ANY (p_pending_id)) res
    ON s.pv AND res.pending_id = s.pending_id
LEFT JOIN (SELECT a.id, a.currency, a.shards FROM ledger_accounts a
           WHERE a.merchant_id = p_merchant AND a.id = ANY (p_debit) AND a.shard = 0
             AND a.livemode = p_livemode) da
    ON NOT s.pv AND da.id = s.dr
LEFT JOIN (SELECT a.id, a.currency, a.shards FROM ledger_accounts a
           WHERE a.merchant_id = p_merchant AND a.id = ANY (p_credit) AND a.shard = 0
             AND a.livemode = p_livemode) ca
    ON NOT s.pv AND ca.id = s.cr
""",
    """-- One probe per batch row and table, the whole key in the index condition: the cost follows
-- the batch, not the merchant's history. Only merchant, mode and shard 0 are constants here,
-- so an index that cannot take the batch row's id can only scan a merchant prefix per row.
LEFT JOIN ledger_transfers e ON e.merchant_id = p_merchant AND e.id = s.id
LEFT JOIN ledger_failed_transfers f ON f.merchant_id = p_merchant AND f.id = s.id
LEFT JOIN ledger_journal_entries j ON j.merchant_id = p_merchant AND j.id = s.journal
LEFT JOIN ledger_transfers pt
    ON s.pv AND pt.merchant_id = p_merchant AND pt.id = s.pending_id
   AND pt.livemode = p_livemode
-- (pending_id IS NOT NULL lets the partial index be proven usable without the join clause.)
LEFT JOIN ledger_transfers res
    ON s.pv AND res.merchant_id = p_merchant AND res.pending_id = s.pending_id
   AND res.pending_id IS NOT NULL
LEFT JOIN ledger_accounts da
    ON NOT s.pv AND da.merchant_id = p_merchant AND da.id = s.dr AND da.shard = 0
   AND da.livemode = p_livemode
LEFT JOIN ledger_accounts ca
    ON NOT s.pv AND ca.merchant_id = p_merchant AND ca.id = s.cr AND ca.shard = 0
   AND ca.livemode = p_livemode
""",
)

# --- the fast path -------------------------------------------------------------------------

FAST = _swap(
    base.FAST,
    """    f_id text[]; f_shard smallint[]; f_dp bigint[]; f_cp bigint[]; f_dpend bigint[];
    f_cpend bigint[];
""",
    """    l_tid tid[];
    f_tid tid[]; f_dp bigint[]; f_cp bigint[]; f_dpend bigint[]; f_cpend bigint[];
""",
)
FAST = _swap(
    FAST,
    """    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
           array_agg(a.credits_posted), array_agg(a.debits_pending), array_agg(a.credits_pending),
           array_agg(a.debits_must_not_exceed_credits), array_agg(a.credits_must_not_exceed_debits),
           bool_or(a.closed), max(a.last_ts)
    INTO l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, v_closed, v_last_ts
    FROM (
        SELECT a.* FROM ledger_accounts a
        WHERE a.merchant_id = p_merchant AND a.id = ANY (v_ids)
          AND (a.shards = 1 OR a.shard = pg_backend_pid() % a.shards
               OR a.id || ':' || a.shard = ANY (v_keys))
        ORDER BY a.id, a.shard
        FOR UPDATE
    ) a;
""",
    """    -- One account id at a time, in id order, its sub-accounts locked in shard order: the
    -- same order as sorting them all. Only the indexes keyed (merchant, id, shard) yield an
    -- account's sub-accounts by shard without a sort, so one of them is chosen whatever the
    -- statistics (an `id = ANY` scan could read every account of the merchant).
    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
           array_agg(a.credits_posted), array_agg(a.debits_pending), array_agg(a.credits_pending),
           array_agg(a.debits_must_not_exceed_credits), array_agg(a.credits_must_not_exceed_debits),
           bool_or(a.closed), max(a.last_ts), array_agg(a.tid)
    INTO l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, v_closed, v_last_ts,
         l_tid
    FROM (
        SELECT a.*
        FROM (SELECT DISTINCT u.id COLLATE "C" AS id FROM unnest(v_ids) AS u(id) ORDER BY 1) k
        CROSS JOIN LATERAL (
            SELECT a.*, a.ctid AS tid FROM ledger_accounts a
            WHERE a.merchant_id = p_merchant AND a.id = k.id
              AND (a.shards = 1 OR a.shard = pg_backend_pid() % a.shards
                   OR a.id || ':' || a.shard = ANY (v_keys))
            ORDER BY a.shard
            FOR UPDATE
        ) a
        ORDER BY a.id, a.shard
    ) a;
""",
)
FAST = _swap(
    FAST,
    """        SELECT * FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim)
            AS a(id, shard, dp0, cp0, dpend0, cpend0, dlim, clim)
""",
    """        SELECT *
        FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, l_tid)
            AS a(id, shard, dp0, cp0, dpend0, cpend0, dlim, clim, tid)
""",
)
FAST = _swap(
    FAST,
    """            row_number() OVER (PARTITION BY l.acc, l.shard ORDER BY l.k DESC) AS from_last,
            a.dlim, a.clim
""",
    """            row_number() OVER (PARTITION BY l.acc, l.shard ORDER BY l.k DESC) AS from_last,
            a.dlim, a.clim, a.tid
""",
)
FAST = _swap(
    FAST,
    """    SELECT (SELECT count(*) FROM ins), array_agg(r.acc), array_agg(r.shard), array_agg(r.dp),
           array_agg(r.cp), array_agg(r.dpend), array_agg(r.cpend)
    INTO v_created, f_id, f_shard, f_dp, f_cp, f_dpend, f_cpend
""",
    """    SELECT (SELECT count(*) FROM ins), array_agg(r.tid), array_agg(r.dp), array_agg(r.cp),
           array_agg(r.dpend), array_agg(r.cpend)
    INTO v_created, f_tid, f_dp, f_cp, f_dpend, f_cpend
""",
)
FAST = _swap(
    FAST,
    """    -- One write per touched sub-account: its counters after the batch's last transfer.
    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = v_ts0 + cardinality(v_id) - 1
    FROM unnest(f_id, f_shard, f_dp, f_cp, f_dpend, f_cpend) AS u(id, shard, dp, cp, dpend, cpend)
    WHERE a.merchant_id = p_merchant AND a.id = u.id AND a.shard = u.shard;
""",
    """    -- One write per touched sub-account: its counters after the batch's last transfer. By
    -- tuple id (locked above, the rows have not moved): no index is left to choose, and with
    -- sequential scans off no plan but a probe per row (a join on the key could start from a
    -- scan of the merchant's every account, on statistics that make it look like one row).
    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = v_ts0 + cardinality(v_id) - 1
    FROM unnest(f_tid, f_dp, f_cp, f_dpend, f_cpend) AS u(tid, dp, cp, dpend, cpend)
    WHERE a.ctid = u.tid;
""",
)

# Both copies keep their settings: neither look-up above leaves the join method to choose (a
# lateral subquery runs once per outer row; with sequential scans off, the only way to reach a
# row by tuple id is the tuple id), and the batch's own joins stay free to hash.
FAST_PLANNED = FAST.replace("{name}", "ledger_post_fast").replace("{settings}", "")
FAST_GENERIC = FAST.replace("{name}", "ledger_post_fast_small").replace(
    "{settings}", "SET plan_cache_mode = force_generic_plan"
)

# --- the sequential path -------------------------------------------------------------------

SEQUENTIAL = _swap(
    base.SEQUENTIAL,
    """    l_touched boolean[]; l_ts bigint;
""",
    """    l_touched boolean[]; l_ts bigint; l_tid tid[];
""",
)
SEQUENTIAL = _swap(
    SEQUENTIAL,
    """    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
           array_agg(a.credits_posted), array_agg(a.debits_pending), array_agg(a.credits_pending),
           array_agg(a.debits_must_not_exceed_credits), array_agg(a.credits_must_not_exceed_debits),
           array_agg(a.closed), max(a.last_ts)
    INTO l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, l_closed, l_ts
    FROM (
        SELECT a.* FROM ledger_accounts a
        WHERE a.merchant_id = p_merchant AND a.livemode = p_livemode
          AND (a.id, a.shard) IN (
              SELECT CASE WHEN s.flags & 12 <> 0 THEN s.p_dr ELSE s.dr END,
                     CASE WHEN s.flags & 12 <> 0 THEN s.p_drs ELSE s.dr_shard END
              FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                  p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                  p_code, p_journal, p_metadata) s
              UNION
              SELECT CASE WHEN s.flags & 12 <> 0 THEN s.p_cr ELSE s.cr END,
                     CASE WHEN s.flags & 12 <> 0 THEN s.p_crs ELSE s.cr_shard END
              FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                  p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                  p_code, p_journal, p_metadata) s)
        ORDER BY a.id, a.shard
        FOR UPDATE
    ) a;
""",
    """    -- Locked account by account in id order, each one's sub-accounts in shard order, as in
    -- the fast path (and for the same reason: an index keyed (merchant, id, shard) is chosen
    -- whatever the statistics).
    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
           array_agg(a.credits_posted), array_agg(a.debits_pending), array_agg(a.credits_pending),
           array_agg(a.debits_must_not_exceed_credits), array_agg(a.credits_must_not_exceed_debits),
           array_agg(a.closed), max(a.last_ts), array_agg(a.tid)
    INTO l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, l_closed, l_ts, l_tid
    FROM (
        SELECT a.*
        FROM (
            SELECT u.id COLLATE "C" AS id, array_agg(u.shard) AS shards
            FROM (
                SELECT CASE WHEN s.flags & 12 <> 0 THEN s.p_dr ELSE s.dr END,
                       CASE WHEN s.flags & 12 <> 0 THEN s.p_drs ELSE s.dr_shard END
                FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                    p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                    p_code, p_journal, p_metadata) s
                UNION
                SELECT CASE WHEN s.flags & 12 <> 0 THEN s.p_cr ELSE s.cr END,
                       CASE WHEN s.flags & 12 <> 0 THEN s.p_crs ELSE s.cr_shard END
                FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                    p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                    p_code, p_journal, p_metadata) s
            ) AS u(id, shard)
            WHERE u.id IS NOT NULL
            GROUP BY 1
            ORDER BY 1
        ) k
        CROSS JOIN LATERAL (
            SELECT a.*, a.ctid AS tid FROM ledger_accounts a
            WHERE a.merchant_id = p_merchant AND a.id = k.id AND a.livemode = p_livemode
              AND a.shard = ANY (k.shards)
            ORDER BY a.shard
            FOR UPDATE
        ) a
        ORDER BY a.id, a.shard
    ) a;
""",
)
SEQUENTIAL = _swap(
    SEQUENTIAL,
    """    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = ts_next - 1
    FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_touched)
         AS u(id, shard, dp, cp, dpend, cpend, touched)
    WHERE u.touched AND a.merchant_id = p_merchant AND a.id = u.id AND a.shard = u.shard;
""",
    """    -- By tuple id, as in the fast path: the rows are locked since the first statement.
    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = ts_next - 1
    FROM unnest(l_tid, l_dp, l_cp, l_dpend, l_cpend, l_touched)
         AS u(tid, dp, cp, dpend, cpend, touched)
    WHERE u.touched AND a.ctid = u.tid;
""",
)

# --- the expiry work list ------------------------------------------------------------------

TIMEOUTS = _swap(
    base.TIMEOUTS,
    """) RETURNS void LANGUAGE plpgsql AS $$
""",
    """) RETURNS void LANGUAGE plpgsql
-- The resolved pending ids are probed one by one from the batch (see ledger_resolve).
SET join_collapse_limit = 1
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_material = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
""",
)
TIMEOUTS = _swap(
    TIMEOUTS,
    """        DELETE FROM ledger_pending_timeouts
        WHERE merchant_id = p_merchant
          AND pending_id IN (SELECT u.pid FROM unnest(p_flags, p_pending_id) u(f, pid)
                             WHERE u.f & 12 <> 0);
""",
    """        -- By tuple id, found in the same statement: a delete joined on the key could start
        -- from a scan of the merchant's whole list. (A left join keeps the batch first; the
        -- NULLs of the rows without a match match no tuple.)
        DELETE FROM ledger_pending_timeouts o
        WHERE o.ctid = ANY (ARRAY(
            SELECT x.ctid
            FROM unnest(p_flags, p_pending_id) AS u(f, pid)
            LEFT JOIN ledger_pending_timeouts x
                ON u.f & 12 <> 0 AND x.merchant_id = p_merchant AND x.pending_id = u.pid));
""",
)

# --- the transfers' account check (ledger_0002) ----------------------------------------------

# ledger_0002's text as it was (indented as there: the stored body keeps its whitespace).
MATCH_ACCOUNTS_0002 = """
    CREATE OR REPLACE FUNCTION ledger_transfers_match_accounts() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE bad record;
    BEGIN
        SELECT t.merchant_id, t.id INTO bad
        FROM inserted t
        LEFT JOIN ledger_accounts d
            ON d.merchant_id = t.merchant_id AND d.id = t.debit_account_id
           AND d.shard = t.debit_shard
        LEFT JOIN ledger_accounts c
            ON c.merchant_id = t.merchant_id AND c.id = t.credit_account_id
           AND c.shard = t.credit_shard
        WHERE d.id IS NULL OR c.id IS NULL
           OR d.currency <> t.currency OR c.currency <> t.currency
           OR d.livemode <> t.livemode OR c.livemode <> t.livemode
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'transfer % of %: its accounts do not exist in its mode and currency',
                bad.id, bad.merchant_id USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END $$;
"""

MATCH_ACCOUNTS = """
CREATE OR REPLACE FUNCTION ledger_transfers_match_accounts() RETURNS trigger
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE bad record;
BEGIN
    -- Each side is one probe of the (merchant, id, shard, livemode, currency) key. Its whole
    -- key is bound by the transfer row, and it alone yields (livemode, currency) in order
    -- after it: ordering by them makes every other index (the primary key, or a scan of the
    -- merchant's accounts by (owner, purpose) key) need a sort, so this one is chosen whatever
    -- the statistics; the key alone ties with a merchant prefix scan on empty statistics.
    SELECT t.merchant_id, t.id INTO bad
    FROM inserted t
    LEFT JOIN LATERAL (
        SELECT a.livemode, a.currency FROM ledger_accounts a
        WHERE a.merchant_id = t.merchant_id AND a.id = t.debit_account_id
          AND a.shard = t.debit_shard
        ORDER BY a.livemode, a.currency
        LIMIT 1) d ON true
    LEFT JOIN LATERAL (
        SELECT a.livemode, a.currency FROM ledger_accounts a
        WHERE a.merchant_id = t.merchant_id AND a.id = t.credit_account_id
          AND a.shard = t.credit_shard
        ORDER BY a.livemode, a.currency
        LIMIT 1) c ON true
    WHERE d.currency IS NULL OR c.currency IS NULL
       OR d.currency <> t.currency OR c.currency <> t.currency
       OR d.livemode <> t.livemode OR c.livemode <> t.livemode
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'transfer % of %: its accounts do not exist in its mode and currency',
            bad.id, bad.merchant_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(
        "\n".join(
            _replaceable(sql) for sql in (RESOLVE, TIMEOUTS, FAST_PLANNED, FAST_GENERIC, SEQUENTIAL)
        )
        + MATCH_ACCOUNTS
    )


def downgrade() -> None:
    op.execute(
        "\n".join(
            _replaceable(sql)
            for sql in (
                base.RESOLVE,
                base.TIMEOUTS,
                base.FAST_PLANNED,
                base.FAST_GENERIC,
                base.SEQUENTIAL,
            )
        )
        + MATCH_ACCOUNTS_0002
    )
