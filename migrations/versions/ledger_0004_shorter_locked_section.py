"""Ledger: the fast path computes before locking whatever does not need the locked counters.

Batches of one merchant that share an account queue on its row from the lock query to the
commit, so a hot account's throughput is about one batch per locked section. That section
used to hold the whole set-based computation: each leg's running counters as window sums over
the batch's legs (partitioned by sub-account, in batch order), the pairing of a transfer's
debit and credit legs, the limit check after every leg, then the INSERT, the account check
and the counters' UPDATE.

A leg's running counters are its sub-account's counters when locked plus the cumulative
deltas of that sub-account's legs up to it in batch order, and the sub-accounts (shards
included) are known before locking. So the cumulative deltas, their pairing per transfer, the
touched sub-accounts' totals, the largest excess each limit has to absorb over the batch, the
journal entries and the transfers' places are all computed before the lock query. Under the
locks are left: reading the counters, one join of the touched sub-accounts with the locked
rows (which checks every limit after every leg at once, through that excess), the INSERT (the
locked counters added by array subscript), the UPDATE, journal entries and the expiry list.

The account check (ledger_0002, as ledger_0003 left it) probes each distinct (merchant,
account, shard, mode, currency) the inserted rows name once, instead of two probes per row: a
batch's transfers share accounts. It refuses the same rows, with the same error, and probes
the same index the same way.

Results, result codes, locking order, timestamps and stored counters are unchanged; the
sequential path is unchanged.

Revision ID: ledger_0004
Revises: ledger_0003
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "ledger_0004"
down_revision = "ledger_0003"
branch_labels = None
depends_on = None


def _ledger_0003() -> ModuleType:
    """The function bodies this revision rewrites are ledger_0003's (itself derived from
    ledger_0001's): derived from them here, and restored from them by the downgrade."""
    path = Path(__file__).with_name("ledger_0003_stable_lookup_plans.py")
    spec = importlib.util.spec_from_file_location("kassa_migration_ledger_0003", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"ledger_0004: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swap(sql: str, old: str, new: str) -> str:
    if sql.count(old) != 1:
        raise RuntimeError(f"ledger_0004: expected one occurrence of {old[:60]!r}")
    return sql.replace(old, new)


def _replaceable(sql: str) -> str:
    return _swap(sql, "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


base = _ledger_0003()

# --- the fast path -------------------------------------------------------------------------

FAST = _swap(
    base.FAST,
    """    v_created integer;
""",
    """    -- Computed before locking: per new transfer (in v_ order), the positions of its debit
    -- and credit sub-accounts in s_ and their cumulative deltas after it; per touched
    -- sub-account (s_), its total deltas and the largest excess its limit must absorb.
    x_dpos integer[]; x_ddp bigint[]; x_dcp bigint[]; x_ddpend bigint[]; x_dcpend bigint[];
    x_cpos integer[]; x_cdp bigint[]; x_ccp bigint[]; x_cdpend bigint[]; x_ccpend bigint[];
    s_id text[]; s_shard smallint[]; s_dp bigint[]; s_cp bigint[]; s_dpend bigint[];
    s_cpend bigint[]; s_xd numeric[]; s_xc numeric[]; s_md numeric[]; s_mc numeric[];
    v_pos bigint[];
    j_id text[]; j_count bigint[]; j_k bigint[];
    v_track boolean;
    -- Under the locks: the touched sub-accounts' locked counters, in s_ order.
    b_dp bigint[]; b_cp bigint[]; b_dpend bigint[]; b_cpend bigint[];
    v_found integer;
    v_bad boolean;
""",
)
FAST = _swap(
    FAST,
    """    -- Lock every touched (sub-)account in one sorted order""",
    """    -- Everything below that does not need the locked counters, computed before locking: the
    -- section other batches of the merchant queue on is then only the reads and writes. A
    -- leg's running counters are its sub-account's locked counters plus the cumulative deltas
    -- of that sub-account's legs up to it in batch order (the shards are chosen already).
    -- Per transfer: both sides' cumulative deltas and the positions of its sub-accounts in
    -- the list of touched ones. Per touched sub-account: its total deltas and, for a limit,
    -- the largest excess of debits (posted and pending) over credits, or the reverse, after
    -- any of its legs: the limit holds after every leg if the locked counters absorb it;
    -- and the largest debits (posted and pending) and credits it reaches, which must fit a
    -- bigint with the locked counters added (``overflows_debits``/``_credits``).
    -- Also each batch position's place among the new transfers (its timestamp's offset), the
    -- journal entries, and whether the expiry list changes.
    WITH t AS (
        SELECT u.*
        FROM unnest(v_dr, v_drs, v_cr, v_crs, v_amount, v_pamount, v_flags, v_timeout)
             WITH ORDINALITY AS u(dr, drs, cr, crs, amount, pamount, flags, timeout, k)
    ),
    legs AS (
        SELECT t.k, d.is_dr, CASE WHEN d.is_dr THEN t.dr ELSE t.cr END AS acc,
            CASE WHEN d.is_dr THEN t.drs ELSE t.crs END AS shard,
            CASE WHEN t.flags & 10 <> 0 THEN 0 ELSE t.amount END AS d_posted,
            CASE WHEN t.flags & 2 <> 0 THEN t.amount WHEN t.flags & 12 <> 0 THEN -t.pamount
                 ELSE 0 END AS d_pending
        FROM t CROSS JOIN (VALUES (true), (false)) AS d(is_dr)
    ),
    run AS (
        SELECT l.*,
            sum(CASE WHEN l.is_dr THEN l.d_posted ELSE 0 END) OVER w AS dp,
            sum(CASE WHEN l.is_dr THEN 0 ELSE l.d_posted END) OVER w AS cp,
            sum(CASE WHEN l.is_dr THEN l.d_pending ELSE 0 END) OVER w AS dpend,
            sum(CASE WHEN l.is_dr THEN 0 ELSE l.d_pending END) OVER w AS cpend,
            dense_rank() OVER (ORDER BY l.acc, l.shard)::integer AS pos
        FROM legs l
        WINDOW w AS (PARTITION BY l.acc, l.shard ORDER BY l.k ROWS UNBOUNDED PRECEDING)
    )
    SELECT x.*, s.*,
        (SELECT bool_or(t.flags & 2 <> 0 AND t.timeout > 0 OR t.flags & 12 <> 0) FROM t)
    INTO x_dpos, x_ddp, x_dcp, x_ddpend, x_dcpend, x_cpos, x_cdp, x_ccp, x_cdpend, x_ccpend,
         s_id, s_shard, s_dp, s_cp, s_dpend, s_cpend, s_xd, s_xc, s_md, s_mc, v_track
    FROM (
        SELECT array_agg(r.pos) FILTER (WHERE r.is_dr),
               array_agg(r.dp::bigint) FILTER (WHERE r.is_dr),
               array_agg(r.cp::bigint) FILTER (WHERE r.is_dr),
               array_agg(r.dpend::bigint) FILTER (WHERE r.is_dr),
               array_agg(r.cpend::bigint) FILTER (WHERE r.is_dr),
               array_agg(r.pos) FILTER (WHERE NOT r.is_dr),
               array_agg(r.dp::bigint) FILTER (WHERE NOT r.is_dr),
               array_agg(r.cp::bigint) FILTER (WHERE NOT r.is_dr),
               array_agg(r.dpend::bigint) FILTER (WHERE NOT r.is_dr),
               array_agg(r.cpend::bigint) FILTER (WHERE NOT r.is_dr)
        FROM (SELECT * FROM run ORDER BY run.k) r
    ) x
    CROSS JOIN (
        SELECT array_agg(g.acc), array_agg(g.shard), array_agg(g.dp), array_agg(g.cp),
               array_agg(g.dpend), array_agg(g.cpend), array_agg(g.xd), array_agg(g.xc),
               array_agg(g.md), array_agg(g.mc)
        FROM (
            SELECT r.acc, r.shard,
                sum(CASE WHEN r.is_dr THEN r.d_posted ELSE 0 END)::bigint AS dp,
                sum(CASE WHEN r.is_dr THEN 0 ELSE r.d_posted END)::bigint AS cp,
                sum(CASE WHEN r.is_dr THEN r.d_pending ELSE 0 END)::bigint AS dpend,
                sum(CASE WHEN r.is_dr THEN 0 ELSE r.d_pending END)::bigint AS cpend,
                max(r.dp + r.dpend - r.cp) AS xd, max(r.cp + r.cpend - r.dp) AS xc,
                max(r.dp + r.dpend) AS md, max(r.cp + r.cpend) AS mc
            FROM run r
            GROUP BY r.pos, r.acc, r.shard
            ORDER BY r.pos
        ) g
    ) s;
    IF v_exists IS NOT NULL THEN
        v_pos := ARRAY(SELECT q.k FROM generate_series(1, v_n) AS g(i)
                       LEFT JOIN unnest(v_i) WITH ORDINALITY AS q(i, k) ON q.i = g.i
                       ORDER BY g.i);
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(v_journal) j WHERE j IS NOT NULL) THEN
        SELECT array_agg(e.journal), array_agg(e.n), array_agg(e.k)
        INTO j_id, j_count, j_k
        FROM (SELECT u.journal, count(*) AS n, min(u.k) AS k
              FROM unnest(v_journal) WITH ORDINALITY AS u(journal, k)
              WHERE u.journal IS NOT NULL
              GROUP BY u.journal) e;
    END IF;

    -- Lock every touched (sub-)account in one sorted order""",
)
FAST = _swap(
    FAST,
    """    -- Each transfer's two legs, running counters per sub-account in batch order (the state
    -- after every single transfer, as if applied one by one). Everything comes from arrays,
    -- so the planner knows every row count.
    WITH t AS (
        SELECT u.*
        FROM unnest(v_id, v_dr, v_drs, v_cr, v_crs, v_amount, v_pamount, v_currency, v_flags,
                    v_pending, v_timeout, v_code, v_journal, v_metadata)
             WITH ORDINALITY AS u(id, dr, drs, cr, crs, amount, pamount, currency, flags,
                                  pending_id, timeout, code, journal, metadata, k)
    ),
    acc AS (
        SELECT *
        FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, l_tid)
            AS a(id, shard, dp0, cp0, dpend0, cpend0, dlim, clim, tid)
    ),
    legs AS (
        SELECT t.*, d.is_dr, CASE WHEN d.is_dr THEN t.dr ELSE t.cr END AS acc,
            CASE WHEN d.is_dr THEN t.drs ELSE t.crs END AS shard,
            CASE WHEN t.flags & 10 <> 0 THEN 0 ELSE t.amount END AS d_posted,
            CASE WHEN t.flags & 2 <> 0 THEN t.amount WHEN t.flags & 12 <> 0 THEN -t.pamount
                 ELSE 0 END AS d_pending
        FROM t CROSS JOIN (VALUES (true), (false)) AS d(is_dr)
    ),
    run AS (
        SELECT l.*,
            a.dp0 + sum(CASE WHEN l.is_dr THEN l.d_posted ELSE 0 END) OVER w AS dp,
            a.cp0 + sum(CASE WHEN l.is_dr THEN 0 ELSE l.d_posted END) OVER w AS cp,
            a.dpend0 + sum(CASE WHEN l.is_dr THEN l.d_pending ELSE 0 END) OVER w AS dpend,
            a.cpend0 + sum(CASE WHEN l.is_dr THEN 0 ELSE l.d_pending END) OVER w AS cpend,
            row_number() OVER (PARTITION BY l.acc, l.shard ORDER BY l.k DESC) AS from_last,
            a.dlim, a.clim, a.tid
        FROM legs l
        JOIN acc a ON a.id = l.acc AND a.shard = l.shard
        WINDOW w AS (PARTITION BY l.acc, l.shard ORDER BY l.k ROWS UNBOUNDED PRECEDING)
    ),
    bad AS (
        SELECT 1 FROM run r
        WHERE (r.dlim AND r.dp + r.dpend > r.cp) OR (r.clim AND r.cp + r.cpend > r.dp)
        LIMIT 1
    ),
    -- The debit leg, then the credit leg of the same transfer: one row each after lead().
    paired AS (
        SELECT r.*,
            lead(r.dp) OVER p AS c_dp, lead(r.cp) OVER p AS c_cp,
            lead(r.dpend) OVER p AS c_dpend, lead(r.cpend) OVER p AS c_cpend
        FROM run r
        WINDOW p AS (ORDER BY r.k, r.is_dr DESC)
    ),
    ins AS (
        INSERT INTO ledger_transfers (
            merchant_id, id, livemode, ts, debit_account_id, debit_shard, credit_account_id,
            credit_shard, amount, currency, flags, pending_id, timeout, code, journal_id,
            metadata, dr_debits_posted, dr_credits_posted, dr_debits_pending,
            dr_credits_pending, cr_debits_posted, cr_credits_posted, cr_debits_pending,
            cr_credits_pending)
        SELECT p_merchant, x.id, p_livemode, v_ts0 + x.k - 1, x.dr, x.drs, x.cr, x.crs,
            x.amount, x.currency, x.flags, x.pending_id, x.timeout, x.code, x.journal,
            x.metadata, x.dp, x.cp, x.dpend, x.cpend, x.c_dp, x.c_cp, x.c_dpend, x.c_cpend
        FROM paired x
        WHERE x.is_dr AND NOT EXISTS (SELECT 1 FROM bad)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM ins), array_agg(r.tid), array_agg(r.dp), array_agg(r.cp),
           array_agg(r.dpend), array_agg(r.cpend)
    INTO v_created, f_tid, f_dp, f_cp, f_dpend, f_cpend
    FROM run r WHERE r.from_last = 1;

    IF v_created = 0 THEN
        RETURN;  -- a limit would be broken: the sequential path says by which transfer
    END IF;
""",
    """    -- The touched sub-accounts' locked counters (in s_ order, by a join with the locked
    -- rows), each limit checked after every leg of its sub-account at once (the locked
    -- counters must absorb the largest excess; numeric, as the running sums were), and the
    -- counters after the batch. The running counters are these plus the deltas above.
    SELECT count(*),
           bool_or((a.dlim AND a.dp0::numeric + a.dpend0 - a.cp0 + a.xd > 0)
                   OR (a.clim AND a.cp0::numeric + a.cpend0 - a.dp0 + a.xc > 0)
                   OR a.dp0::numeric + a.dpend0 + a.md > 9223372036854775807
                   OR a.cp0::numeric + a.cpend0 + a.mc > 9223372036854775807),
           array_agg(a.dp0), array_agg(a.cp0), array_agg(a.dpend0), array_agg(a.cpend0),
           array_agg(a.tid), array_agg(a.dp0 + a.dp), array_agg(a.cp0 + a.cp),
           array_agg(a.dpend0 + a.dpend), array_agg(a.cpend0 + a.cpend)
    INTO v_found, v_bad, b_dp, b_cp, b_dpend, b_cpend, f_tid, f_dp, f_cp, f_dpend, f_cpend
    FROM (
        SELECT s.dp, s.cp, s.dpend, s.cpend, s.xd, s.xc, s.md, s.mc, a.dp0, a.cp0, a.dpend0,
               a.cpend0,
               a.dlim, a.clim, a.tid
        FROM unnest(s_id, s_shard, s_dp, s_cp, s_dpend, s_cpend, s_xd, s_xc, s_md, s_mc)
             WITH ORDINALITY AS s(id, shard, dp, cp, dpend, cpend, xd, xc, md, mc, pos)
        JOIN unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim, l_tid)
             AS a(id, shard, dp0, cp0, dpend0, cpend0, dlim, clim, tid)
            ON a.id = s.id AND a.shard = s.shard
        ORDER BY s.pos
    ) a;
    IF v_found <> cardinality(s_id) OR v_bad IS NOT FALSE THEN
        RETURN;  -- a limit or a bigint would break: the sequential path says which transfer
    END IF;

    -- Each transfer with both sides' counters right after it, in batch order.
    INSERT INTO ledger_transfers (
        merchant_id, id, livemode, ts, debit_account_id, debit_shard, credit_account_id,
        credit_shard, amount, currency, flags, pending_id, timeout, code, journal_id,
        metadata, dr_debits_posted, dr_credits_posted, dr_debits_pending,
        dr_credits_pending, cr_debits_posted, cr_credits_posted, cr_debits_pending,
        cr_credits_pending)
    SELECT p_merchant, u.id, p_livemode, v_ts0 + u.k - 1, u.dr, u.drs, u.cr, u.crs,
        u.amount, u.currency, u.flags, u.pending_id, u.timeout, u.code, u.journal,
        u.metadata,
        b_dp[u.dpos] + u.ddp, b_cp[u.dpos] + u.dcp, b_dpend[u.dpos] + u.ddpend,
        b_cpend[u.dpos] + u.dcpend,
        b_dp[u.cpos] + u.cdp, b_cp[u.cpos] + u.ccp, b_dpend[u.cpos] + u.cdpend,
        b_cpend[u.cpos] + u.ccpend
    FROM unnest(v_id, v_dr, v_drs, v_cr, v_crs, v_amount, v_currency, v_flags, v_pending,
                v_timeout, v_code, v_journal, v_metadata, x_dpos, x_ddp, x_dcp, x_ddpend,
                x_dcpend, x_cpos, x_cdp, x_ccp, x_cdpend, x_ccpend)
         WITH ORDINALITY AS u(id, dr, drs, cr, crs, amount, currency, flags, pending_id,
                              timeout, code, journal, metadata, dpos, ddp, dcp, ddpend,
                              dcpend, cpos, cdp, ccp, cdpend, ccpend, k);

""",
)
FAST = _swap(
    FAST,
    """    FOR k IN 1 .. cardinality(v_i) LOOP
        timestamps[v_i[k]] := v_ts0 + k - 1;
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(v_journal) j WHERE j IS NOT NULL) THEN
        INSERT INTO ledger_journal_entries (merchant_id, id, livemode, transfer_count, ts)
        SELECT p_merchant, u.journal, p_livemode, count(*), min(v_ts0 + u.k - 1)
        FROM unnest(v_journal) WITH ORDINALITY AS u(journal, k)
        WHERE u.journal IS NOT NULL
        GROUP BY u.journal;
    END IF;
    PERFORM ledger_track_timeouts(p_merchant, p_livemode, v_ts0, v_id, v_flags, v_pending,
                                  v_timeout, NULL);
""",
    """    IF v_pos IS NULL THEN
        timestamps := ARRAY(SELECT v_ts0 + g.k - 1 FROM generate_series(1, v_n) AS g(k));
    ELSE
        -- NULL for the batch's exact repeats (no place among the new transfers).
        timestamps := ARRAY(SELECT v_ts0 + u.k - 1 FROM unnest(v_pos) AS u(k));
    END IF;
    IF j_id IS NOT NULL THEN
        INSERT INTO ledger_journal_entries (merchant_id, id, livemode, transfer_count, ts)
        SELECT p_merchant, e.journal, p_livemode, e.n, v_ts0 + e.k - 1
        FROM unnest(j_id, j_count, j_k) AS e(journal, n, k);
    END IF;
    IF v_track THEN
        PERFORM ledger_track_timeouts(p_merchant, p_livemode, v_ts0, v_id, v_flags, v_pending,
                                      v_timeout, NULL);
    END IF;
""",
)

# The counters are written back by tuple id (ledger_0003), which cannot miss a row while the
# rows are locked; a miss would leave transfers stored and a balance not moved, so it is an
# error rather than a silent no-op.
FAST = _swap(
    FAST,
    """    WHERE a.ctid = u.tid;
""",
    """    WHERE a.ctid = u.tid;
    GET DIAGNOSTICS v_found = ROW_COUNT;
    IF v_found <> cardinality(f_tid) THEN
        RAISE EXCEPTION 'ledger: % of % account rows written back for merchant %', v_found,
            cardinality(f_tid), p_merchant USING ERRCODE = 'internal_error';
    END IF;
""",
)

# Both copies keep their settings (ledger_0003's): the statements added here read arrays only,
# besides the INSERT and the UPDATE by tuple id.
FAST_PLANNED = FAST.replace("{name}", "ledger_post_fast").replace("{settings}", "")
FAST_GENERIC = FAST.replace("{name}", "ledger_post_fast_small").replace(
    "{settings}", "SET plan_cache_mode = force_generic_plan"
)

# --- the transfers' account check (ledger_0002, as ledger_0003 left it) ----------------------

MATCH_ACCOUNTS = _swap(
    base.MATCH_ACCOUNTS,
    """DECLARE bad record;
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
""",
    """DECLARE bad record; side record;
BEGIN
    -- Every (merchant, account, shard, mode, currency) the inserted rows name on either side,
    -- once (a batch's transfers share accounts), is one probe of the (merchant, id, shard,
    -- livemode, currency) key. Its whole key is bound by the row, and it alone yields
    -- (livemode, currency) in order after it: ordering by them makes every other index (the
    -- primary key, or a scan of the merchant's accounts by (owner, purpose) key) need a sort,
    -- so this one is chosen whatever the statistics; the key alone ties with a merchant prefix
    -- scan on empty statistics.
    SELECT k.* INTO side
    FROM (SELECT t.merchant_id, t.debit_account_id, t.debit_shard, t.livemode, t.currency
          FROM inserted t
          UNION
          SELECT t.merchant_id, t.credit_account_id, t.credit_shard, t.livemode, t.currency
          FROM inserted t) AS k(merchant_id, id, shard, livemode, currency)
    LEFT JOIN LATERAL (
        SELECT a.livemode, a.currency FROM ledger_accounts a
        WHERE a.merchant_id = k.merchant_id AND a.id = k.id AND a.shard = k.shard
        ORDER BY a.livemode, a.currency
        LIMIT 1) a ON true
    WHERE a.currency IS NULL OR a.currency <> k.currency OR a.livemode <> k.livemode
    LIMIT 1;
    IF FOUND THEN
        -- A transfer naming it, for the message.
        SELECT t.merchant_id, t.id INTO bad
        FROM inserted t
        WHERE t.merchant_id = side.merchant_id AND t.livemode = side.livemode
          AND t.currency = side.currency
          AND ((t.debit_account_id = side.id AND t.debit_shard = side.shard)
               OR (t.credit_account_id = side.id AND t.credit_shard = side.shard))
        LIMIT 1;
""",
)


def upgrade() -> None:
    op.execute(
        "\n".join(_replaceable(sql) for sql in (FAST_PLANNED, FAST_GENERIC)) + MATCH_ACCOUNTS
    )


def downgrade() -> None:
    op.execute(
        "\n".join(_replaceable(sql) for sql in (base.FAST_PLANNED, base.FAST_GENERIC))
        + base.MATCH_ACCOUNTS
    )
