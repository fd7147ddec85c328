"""Ledger: accounts, append-only transfers, and the batch posting function.

Revision ID: ledger_0001
Revises:
"""

from alembic import op

revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = "0001_foundation"

TABLES = """
-- One row per (sub-)account. A logical account (merchant, mode, owner, purpose, currency) has
-- `shards` rows with the same id; transfers pick one, reads sum them.
CREATE TABLE ledger_accounts (
    merchant_id     text COLLATE "C" NOT NULL REFERENCES merchants (id),
    id              text COLLATE "C" NOT NULL,
    shard           smallint NOT NULL,
    livemode        boolean NOT NULL,
    owner           text COLLATE "C" NOT NULL,
    purpose         text COLLATE "C" NOT NULL,
    currency        text COLLATE "C" NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    shards          smallint NOT NULL CHECK (shards BETWEEN 1 AND 64),
    debits_must_not_exceed_credits boolean NOT NULL,
    credits_must_not_exceed_debits boolean NOT NULL,
    closed          boolean NOT NULL DEFAULT false,
    debits_posted   bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted  bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending  bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    -- The ledger timestamp (unix microseconds) of the last transfer touching this row: the next
    -- one gets a larger one, so timestamps order each account's history.
    last_ts         bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (merchant_id, id, shard),
    -- The target of the transfers' composite foreign keys: a transfer's currency and mode must
    -- be its accounts' (and its merchant their merchant).
    UNIQUE (merchant_id, id, shard, livemode, currency),
    UNIQUE (merchant_id, livemode, owner, purpose, currency, shard),
    CHECK (shard >= 0 AND shard < shards),
    CHECK (NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)),
    -- A limit on a split account could hold per row and fail in sum (or the reverse).
    CHECK (shards = 1 OR NOT (debits_must_not_exceed_credits OR credits_must_not_exceed_debits)),
    CHECK (NOT debits_must_not_exceed_credits
           OR debits_posted + debits_pending <= credits_posted),
    CHECK (NOT credits_must_not_exceed_debits
           OR credits_posted + credits_pending <= debits_posted)
) WITH (fillfactor = 70);

-- flags: 1 linked, 2 pending, 4 post_pending, 8 void_pending, 16 expire (a void by timeout).
CREATE TABLE ledger_transfers (
    merchant_id       text COLLATE "C" NOT NULL,
    id                text COLLATE "C" NOT NULL CHECK (length(id) BETWEEN 1 AND 255),
    livemode          boolean NOT NULL,
    ts                bigint NOT NULL,
    debit_account_id  text COLLATE "C" NOT NULL,
    debit_shard       smallint NOT NULL,
    credit_account_id text COLLATE "C" NOT NULL,
    credit_shard      smallint NOT NULL,
    amount            bigint NOT NULL CHECK (amount > 0),
    currency          text COLLATE "C" NOT NULL,
    flags             smallint NOT NULL CHECK (flags >= 0 AND flags < 32),
    pending_id        text COLLATE "C",
    timeout           integer NOT NULL CHECK (timeout >= 0),
    code              text COLLATE "C" NOT NULL,
    journal_id        text COLLATE "C",
    metadata          jsonb,
    -- Counters of the debit (dr_) and credit (cr_) sub-accounts right after this transfer:
    -- point-in-time balances are one index probe away.
    dr_debits_posted  bigint NOT NULL,
    dr_credits_posted bigint NOT NULL,
    dr_debits_pending bigint NOT NULL,
    dr_credits_pending bigint NOT NULL,
    cr_debits_posted  bigint NOT NULL,
    cr_credits_posted bigint NOT NULL,
    cr_debits_pending bigint NOT NULL,
    cr_credits_pending bigint NOT NULL,
    PRIMARY KEY (merchant_id, id),
    FOREIGN KEY (merchant_id, debit_account_id, debit_shard, livemode, currency)
        REFERENCES ledger_accounts (merchant_id, id, shard, livemode, currency),
    FOREIGN KEY (merchant_id, credit_account_id, credit_shard, livemode, currency)
        REFERENCES ledger_accounts (merchant_id, id, shard, livemode, currency),
    FOREIGN KEY (merchant_id, pending_id) REFERENCES ledger_transfers (merchant_id, id),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((flags & 12 = 0) = (pending_id IS NULL)),
    CHECK (flags & 2 = 0 OR flags & 12 = 0),
    CHECK (flags & 4 = 0 OR flags & 8 = 0),
    CHECK (flags & 16 = 0 OR flags & 8 <> 0),
    CHECK (timeout = 0 OR flags & 2 <> 0)
);
-- Each sub-account's history in ledger time; unique, so no two legs of one side share a tick.
CREATE UNIQUE INDEX ledger_transfers_debit
    ON ledger_transfers (merchant_id, debit_account_id, debit_shard, ts);
CREATE UNIQUE INDEX ledger_transfers_credit
    ON ledger_transfers (merchant_id, credit_account_id, credit_shard, ts);
-- A pending transfer is posted or voided at most once: a database fact, not a code path.
CREATE UNIQUE INDEX ledger_transfers_resolution
    ON ledger_transfers (merchant_id, pending_id) WHERE pending_id IS NOT NULL;

-- Business events: the transfers sharing a journal id were committed as one linked chain.
CREATE TABLE ledger_journal_entries (
    merchant_id    text COLLATE "C" NOT NULL,
    id             text COLLATE "C" NOT NULL,
    livemode       boolean NOT NULL,
    transfer_count integer NOT NULL CHECK (transfer_count > 0),
    ts             bigint NOT NULL,
    PRIMARY KEY (merchant_id, id)
);

-- Ids of transfers that failed for a reason that could change (an account missing, a limit):
-- a retry answers id_already_failed instead of succeeding later with different effects.
CREATE TABLE ledger_failed_transfers (
    merchant_id text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    livemode    boolean NOT NULL,
    result      text NOT NULL,
    ts          bigint NOT NULL,
    PRIMARY KEY (merchant_id, id)
);

-- Unresolved pending transfers with a timeout: a small, mutable work list for the expiry job
-- (the journal itself is append-only, so it cannot forget resolved ones).
CREATE TABLE ledger_pending_timeouts (
    merchant_id text COLLATE "C" NOT NULL,
    pending_id  text COLLATE "C" NOT NULL,
    livemode    boolean NOT NULL,
    expires_at  bigint NOT NULL,
    PRIMARY KEY (merchant_id, pending_id)
);
CREATE INDEX ledger_pending_timeouts_due ON ledger_pending_timeouts (merchant_id, expires_at);

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed; post a reversing transfer instead',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_journal_append_only BEFORE UPDATE OR DELETE ON ledger_journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_journal_no_truncate BEFORE TRUNCATE ON ledger_journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_failed_append_only BEFORE UPDATE OR DELETE ON ledger_failed_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""

# The first differing field of a repeated transfer id, in TigerBeetle's spirit: a post or void
# may omit the accounts, amount, currency and code (they come from the pending transfer), so an
# omitted field matches whatever was stored.
COMPARE = """
CREATE FUNCTION ledger_compare(
    r_flags integer, r_pending_id text, r_timeout integer, r_dr text, r_cr text,
    r_amount bigint, r_metadata jsonb, r_currency text, r_code text, r_journal text,
    s_flags integer, s_pending_id text, s_timeout integer, s_dr text, s_cr text,
    s_amount bigint, s_metadata jsonb, s_currency text, s_code text, s_journal text
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN r_flags IS DISTINCT FROM s_flags THEN 'exists_with_different_flags'
        WHEN r_pending_id IS DISTINCT FROM s_pending_id THEN 'exists_with_different_pending_id'
        WHEN r_timeout IS DISTINCT FROM s_timeout THEN 'exists_with_different_timeout'
        WHEN r_dr IS NOT NULL AND r_dr IS DISTINCT FROM s_dr
            THEN 'exists_with_different_debit_account_id'
        WHEN r_cr IS NOT NULL AND r_cr IS DISTINCT FROM s_cr
            THEN 'exists_with_different_credit_account_id'
        WHEN r_amount IS NOT NULL AND r_amount IS DISTINCT FROM s_amount
            THEN 'exists_with_different_amount'
        WHEN r_metadata IS DISTINCT FROM s_metadata THEN 'exists_with_different_metadata'
        WHEN r_currency IS NOT NULL AND r_currency IS DISTINCT FROM s_currency
            THEN 'exists_with_different_currency'
        WHEN r_code IS NOT NULL AND r_code IS DISTINCT FROM s_code
            THEN 'exists_with_different_code'
        WHEN r_journal IS DISTINCT FROM s_journal THEN 'exists_with_different_journal_id'
        ELSE 'exists'
    END
$$;
"""

# Everything about a batch that can be looked up, one row per transfer in batch order: static
# validation, earlier occurrences of the same id, the stored transfer with that id, burned ids,
# the referenced pending transfer and its resolution, the accounts and the chosen shards.
RESOLVE = """
CREATE FUNCTION ledger_resolve(
    p_merchant text, p_livemode boolean, p_now bigint,
    p_id text[], p_debit text[], p_credit text[], p_amount bigint[], p_currency text[],
    p_flags integer[], p_pending_id text[], p_timeout integer[], p_code text[],
    p_journal text[], p_metadata jsonb[]
) RETURNS TABLE (
    i integer, id text, dr text, cr text, amount bigint, currency text, flags integer,
    pending_id text, timeout integer, code text, journal text, metadata jsonb,
    scode text, first_i integer, pend_i integer, pref_i integer, ex_code text,
    failed boolean, journal_db boolean,
    p_found boolean, p_is_pending boolean, p_dr text, p_drs smallint, p_cr text,
    p_crs smallint, p_amount_ bigint, p_currency_ text, p_code_ text, p_resolution text,
    p_expired boolean,
    dr_found boolean, dr_currency text, dr_shard smallint,
    cr_found boolean, cr_currency text, cr_shard smallint
) LANGUAGE plpgsql STABLE
-- plpgsql caches the plan per session; every look-up below is one index scan over the batch's
-- keys, joined by hash in the order written, so one plan suits any batch size and any table
-- size (a plan made while a table was still small must not scan it once it is large).
SET join_collapse_limit = 1
SET from_collapse_limit = 1
SET enable_nestloop = off
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH b AS (
    SELECT u.*, cardinality(p_id) AS n, (u.flags & 12 <> 0) AS pv
    FROM unnest(p_id, p_debit, p_credit, p_amount, p_currency, p_flags, p_pending_id,
                p_timeout, p_code, p_journal, p_metadata)
         WITH ORDINALITY AS u(id, dr, cr, amount, currency, flags, pending_id, timeout, code,
                              journal, metadata, i)
),
c AS (
    SELECT b.*, coalesce(sum(CASE WHEN b.flags & 1 = 0 THEN 1 ELSE 0 END) OVER (
        ORDER BY b.i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS chain_no
    FROM b
),
w AS (
    SELECT c.*,
        min(c.i) OVER (PARTITION BY c.id) AS first_i,
        min(c.i) OVER (PARTITION BY c.pending_id) AS pref_i,
        count(*) OVER (PARTITION BY c.chain_no) AS chain_size,
        CASE WHEN c.journal IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY c.journal) END
            AS j_size,
        min(c.chain_no) OVER (PARTITION BY c.journal) AS j_min_chain,
        max(c.chain_no) OVER (PARTITION BY c.journal) AS j_max_chain
    FROM c
),
s AS (
    SELECT w.*, CASE
        WHEN w.i = w.n AND w.flags & 1 <> 0 THEN 'linked_event_chain_open'
        WHEN w.id IS NULL OR w.id = '' THEN 'id_must_not_be_empty'
        -- Callers get 200 characters; the timeout job's voids append a suffix.
        WHEN length(w.id) > CASE WHEN coalesce(w.flags, 0) & 16 <> 0 THEN 255 ELSE 200 END
            THEN 'id_too_long'
        WHEN w.flags IS NULL OR w.flags & ~31 <> 0 THEN 'reserved_flag'
        WHEN (w.flags & 2 <> 0)::int + (w.flags & 4 <> 0)::int + (w.flags & 8 <> 0)::int > 1
             OR (w.flags & 16 <> 0 AND w.flags & 8 = 0) THEN 'flags_are_mutually_exclusive'
        WHEN NOT w.pv AND (w.dr IS NULL OR w.dr = '') THEN 'debit_account_id_must_not_be_empty'
        WHEN NOT w.pv AND (w.cr IS NULL OR w.cr = '') THEN 'credit_account_id_must_not_be_empty'
        WHEN w.dr = w.cr THEN 'accounts_must_be_different'
        WHEN NOT w.pv AND w.pending_id IS NOT NULL THEN 'pending_id_must_be_empty'
        WHEN w.pv AND (w.pending_id IS NULL OR w.pending_id = '')
            THEN 'pending_id_must_not_be_empty'
        WHEN w.pv AND w.pending_id = w.id THEN 'pending_id_must_be_different'
        WHEN w.timeout IS NULL OR w.timeout < 0 THEN 'timeout_must_not_be_negative'
        WHEN w.flags & 2 = 0 AND w.timeout <> 0 THEN 'timeout_reserved_for_pending_transfer'
        WHEN NOT w.pv AND (w.amount IS NULL OR w.amount <= 0) THEN 'amount_must_be_positive'
        WHEN w.pv AND w.amount IS NOT NULL AND w.amount <= 0 THEN 'amount_must_be_positive'
        WHEN NOT w.pv AND (w.currency IS NULL OR w.currency = '')
            THEN 'currency_must_not_be_empty'
        WHEN NOT w.pv AND (w.code IS NULL OR w.code = '') THEN 'code_must_not_be_empty'
        WHEN w.journal IS NOT NULL
             AND (w.j_min_chain <> w.j_max_chain OR w.chain_size <> w.j_size)
            THEN 'journal_must_be_one_linked_chain'
    END AS scode
    FROM w
)
SELECT
    s.i::integer, s.id, s.dr, s.cr, s.amount, s.currency, s.flags, s.pending_id, s.timeout,
    s.code, s.journal, s.metadata, s.scode, s.first_i::integer, fi.first::integer,
    s.pref_i::integer,
    CASE WHEN e.id IS NOT NULL THEN ledger_compare(
        s.flags, s.pending_id, s.timeout, s.dr, s.cr, s.amount, s.metadata, s.currency,
        s.code, s.journal,
        e.flags, e.pending_id, e.timeout, e.debit_account_id, e.credit_account_id, e.amount,
        e.metadata, e.currency, e.code, e.journal_id) END,
    f.id IS NOT NULL,
    j.id IS NOT NULL,
    pt.id IS NOT NULL, pt.flags & 2 <> 0, pt.debit_account_id, pt.debit_shard,
    pt.credit_account_id, pt.credit_shard, pt.amount, pt.currency, pt.code,
    CASE WHEN res.flags & 16 <> 0 THEN 'expired' WHEN res.flags & 4 <> 0 THEN 'posted'
         WHEN res.flags & 8 <> 0 THEN 'voided' END,
    pt.timeout > 0 AND pt.ts + pt.timeout::bigint * 1000000 <= p_now,
    da.id IS NOT NULL, da.currency,
    CASE WHEN da.shards > 1 THEN (pg_backend_pid() % da.shards)::smallint ELSE 0::smallint END,
    ca.id IS NOT NULL, ca.currency,
    CASE WHEN ca.shards > 1 THEN (pg_backend_pid() % ca.shards)::smallint ELSE 0::smallint END
FROM s
LEFT JOIN (SELECT b.id, min(b.i) AS first FROM b GROUP BY b.id) fi
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
ORDER BY s.i;
END $$;
"""

# The common case, set-based: every transfer in the batch is new and valid and no limit is hit
# (or it repeats a stored transfer exactly). Checks run without locks, optimistically; anything
# else declines (done = false) and the sequential path decides. What could change between the
# checks and the locks is caught by the database: an id or resolution committed meanwhile
# raises unique_violation, a limit check_violation, and the caller falls back.
FAST = """
CREATE FUNCTION {name}(
    p_merchant text, p_livemode boolean, p_now bigint,
    p_id text[], p_debit text[], p_credit text[], p_amount bigint[], p_currency text[],
    p_flags integer[], p_pending_id text[], p_timeout integer[], p_code text[],
    p_journal text[], p_metadata jsonb[],
    OUT done boolean, OUT results text[], OUT timestamps bigint[]
) LANGUAGE plpgsql
-- Joins in the order written (each look-up is an index scan over the batch's keys): planning
-- these statements would otherwise cost more than running them for a small batch. Index
-- access only: a cached plan must not scan a table it saw small when it was made.
SET join_collapse_limit = 1
SET from_collapse_limit = 1
SET enable_seqscan = off
{settings}
AS $$
DECLARE
    v_clean boolean;
    v_n integer := cardinality(p_id);
    v_i integer[]; v_id text[]; v_dr text[]; v_drs smallint[]; v_cr text[]; v_crs smallint[];
    v_amount bigint[]; v_pamount bigint[]; v_currency text[]; v_flags integer[];
    v_pending text[]; v_timeout integer[]; v_code text[]; v_journal text[];
    v_metadata jsonb[];
    v_exists integer[];
    v_ids text[];
    v_keys text[];
    l_id text[]; l_shard smallint[]; l_dp bigint[]; l_cp bigint[]; l_dpend bigint[];
    l_cpend bigint[]; l_dlim boolean[]; l_clim boolean[];
    f_id text[]; f_shard smallint[]; f_dp bigint[]; f_cp bigint[]; f_dpend bigint[];
    f_cpend bigint[];
    v_closed boolean;
    v_last_ts bigint;
    v_created integer;
    v_ts0 bigint;
BEGIN
    done := false;
    SELECT
        bool_and(CASE
            WHEN x.scode IS NOT NULL OR x.first_i <> x.i THEN false
            WHEN x.ex_code IS NOT NULL THEN x.ex_code = 'exists'
            WHEN x.failed OR x.journal_db THEN false
            WHEN x.flags & 12 <> 0 THEN
                x.pend_i IS NULL AND x.pref_i = x.i AND x.flags & 16 = 0
                AND x.p_found AND x.p_is_pending AND x.p_resolution IS NULL
                AND NOT x.p_expired
                AND coalesce(x.dr = x.p_dr, true) AND coalesce(x.cr = x.p_cr, true)
                AND coalesce(x.currency = x.p_currency_, true)
                AND coalesce(x.code = x.p_code_, true)
                AND CASE WHEN x.flags & 4 <> 0 THEN coalesce(x.amount <= x.p_amount_, true)
                         ELSE coalesce(x.amount = x.p_amount_, true) END
            ELSE x.dr_found AND x.cr_found AND x.dr_currency = x.currency
                 AND x.cr_currency = x.currency
        END),
        array_agg(x.i) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.id) FILTER (WHERE x.ex_code IS NULL),
        array_agg(CASE WHEN x.flags & 12 <> 0 THEN x.p_dr ELSE x.dr END)
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(CASE WHEN x.flags & 12 <> 0 THEN x.p_drs ELSE x.dr_shard END)
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(CASE WHEN x.flags & 12 <> 0 THEN x.p_cr ELSE x.cr END)
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(CASE WHEN x.flags & 12 <> 0 THEN x.p_crs ELSE x.cr_shard END)
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(CASE WHEN x.flags & 4 <> 0 THEN coalesce(x.amount, x.p_amount_)
                       WHEN x.flags & 8 <> 0 THEN x.p_amount_ ELSE x.amount END)
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(coalesce(x.p_amount_, 0)) FILTER (WHERE x.ex_code IS NULL),
        array_agg(coalesce(x.currency, x.p_currency_))
            FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.flags) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.pending_id) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.timeout) FILTER (WHERE x.ex_code IS NULL),
        array_agg(coalesce(x.code, x.p_code_)) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.journal) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.metadata) FILTER (WHERE x.ex_code IS NULL),
        array_agg(x.i) FILTER (WHERE x.ex_code IS NOT NULL)
    INTO v_clean, v_i, v_id, v_dr, v_drs, v_cr, v_crs, v_amount, v_pamount, v_currency,
         v_flags, v_pending, v_timeout, v_code, v_journal, v_metadata, v_exists
    -- Aggregates take rows in the order of a sorted subquery (one sort, not one per array).
    FROM (SELECT * FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                       p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                       p_code, p_journal, p_metadata) r
          ORDER BY r.i) x;
    IF v_clean IS NOT TRUE THEN
        RETURN;
    END IF;
    results := array_fill(NULL::text, ARRAY[v_n]);
    timestamps := array_fill(NULL::bigint, ARRAY[v_n]);
    IF v_exists IS NOT NULL THEN
        FOR k IN 1 .. cardinality(v_exists) LOOP
            results[v_exists[k]] := 'exists';
        END LOOP;
    END IF;
    IF v_i IS NULL THEN
        done := true;
        RETURN;
    END IF;

    -- The sub-accounts this batch touches: the shard this backend picks for new transfers
    -- (pid mod shards, see ledger_resolve), the pending transfer's own for posts and voids.
    v_ids := v_dr || v_cr;
    v_keys := ARRAY(SELECT u.id || ':' || u.shard
                    FROM unnest(v_dr || v_cr, v_drs || v_crs, v_flags || v_flags)
                         AS u(id, shard, flags)
                    WHERE u.flags & 12 <> 0);
    -- Lock every touched (sub-)account in one sorted order (no deadlocks between batches) and
    -- read its counters: a locking read sees the latest committed values.
    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
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
    IF v_closed THEN
        RETURN;  -- only voids may touch a closed account: the sequential path sorts it out
    END IF;
    v_ts0 := greatest(p_now, v_last_ts + 1);

    -- Each transfer's two legs, running counters per sub-account in batch order (the state
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
        SELECT * FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_dlim, l_clim)
            AS a(id, shard, dp0, cp0, dpend0, cpend0, dlim, clim)
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
            a.dlim, a.clim
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
    SELECT (SELECT count(*) FROM ins), array_agg(r.acc), array_agg(r.shard), array_agg(r.dp),
           array_agg(r.cp), array_agg(r.dpend), array_agg(r.cpend)
    INTO v_created, f_id, f_shard, f_dp, f_cp, f_dpend, f_cpend
    FROM run r WHERE r.from_last = 1;

    IF v_created = 0 THEN
        RETURN;  -- a limit would be broken: the sequential path says by which transfer
    END IF;
    -- One write per touched sub-account: its counters after the batch's last transfer.
    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = v_ts0 + cardinality(v_id) - 1
    FROM unnest(f_id, f_shard, f_dp, f_cp, f_dpend, f_cpend) AS u(id, shard, dp, cp, dpend, cpend)
    WHERE a.merchant_id = p_merchant AND a.id = u.id AND a.shard = u.shard;

    FOR k IN 1 .. cardinality(v_i) LOOP
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
    done := true;
END $$;
"""

# Pending transfers with a timeout join the expiry work list; resolved ones leave it.
TIMEOUTS = """
CREATE FUNCTION ledger_track_timeouts(
    p_merchant text, p_livemode boolean, p_ts0 bigint, p_id text[], p_flags integer[],
    p_pending_id text[], p_timeout integer[], p_ts bigint[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- p_ts NULL: the k-th transfer has timestamp p_ts0 + k - 1.
    IF EXISTS (SELECT 1 FROM unnest(p_flags, p_timeout) u(f, t) WHERE u.f & 2 <> 0 AND u.t > 0)
    THEN
        INSERT INTO ledger_pending_timeouts (merchant_id, pending_id, livemode, expires_at)
        SELECT p_merchant, u.id, p_livemode,
               coalesce(p_ts[u.k], p_ts0 + u.k - 1) + u.timeout::bigint * 1000000
        FROM unnest(p_id, p_flags, p_timeout) WITH ORDINALITY AS u(id, flags, timeout, k)
        WHERE u.flags & 2 <> 0 AND u.timeout > 0;
    END IF;
    IF EXISTS (SELECT 1 FROM unnest(p_flags) u(f) WHERE u.f & 12 <> 0) THEN
        DELETE FROM ledger_pending_timeouts
        WHERE merchant_id = p_merchant
          AND pending_id IN (SELECT u.pid FROM unnest(p_flags, p_pending_id) u(f, pid)
                             WHERE u.f & 12 <> 0);
    END IF;
END $$;
"""

# The exact path: lock every account the batch may touch (sorted), look everything up again
# under the locks, then decide transfer by transfer in batch order, as TigerBeetle does:
# limits hold after every transfer, linked chains roll back as a whole, a later transfer sees
# what an earlier one did. Writes happen once, at the end, set-based.
SEQUENTIAL = """
CREATE FUNCTION ledger_post_sequential(
    p_merchant text, p_livemode boolean, p_now bigint,
    p_id text[], p_debit text[], p_credit text[], p_amount bigint[], p_currency text[],
    p_flags integer[], p_pending_id text[], p_timeout integer[], p_code text[],
    p_journal text[], p_metadata jsonb[],
    OUT results text[], OUT timestamps bigint[]
) LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
    c_max constant numeric := 9223372036854775807;
    n integer := cardinality(p_id);
    x record;
    -- per transfer, from ledger_resolve
    a_scode text[]; a_first integer[]; a_pend integer[]; a_pref integer[]; a_ex text[];
    a_failed boolean[]; a_jdb boolean[]; a_pfound boolean[]; a_pis boolean[];
    a_pdr text[]; a_pdrs smallint[]; a_pcr text[]; a_pcrs smallint[]; a_pamount bigint[];
    a_pcurrency text[]; a_pcode text[]; a_pres text[]; a_pexp boolean[];
    a_drf boolean[]; a_drc text[]; a_drs smallint[]; a_crf boolean[]; a_crc text[];
    a_crs smallint[];
    -- locked sub-accounts
    l_id text[]; l_shard smallint[]; l_dp bigint[]; l_cp bigint[]; l_dpend bigint[];
    l_cpend bigint[]; l_dlim boolean[]; l_clim boolean[]; l_closed boolean[];
    l_touched boolean[]; l_ts bigint;
    s_dp bigint[]; s_cp bigint[]; s_dpend bigint[]; s_cpend bigint[];
    -- account positions: request accounts, pending transfer's accounts
    q_dr integer[]; q_cr integer[]; q_pdr integer[]; q_pcr integer[];
    -- resolved transfer (ok ones)
    r_dr text[]; r_drs smallint[]; r_cr text[]; r_crs smallint[]; r_drp integer[];
    r_crp integer[]; r_amount bigint[]; r_pamount bigint[]; r_currency text[]; r_code text[];
    r_run bigint[];
    -- state evolving through the batch, keyed by the first batch index of an id / pending id
    g_created integer[]; g_failed boolean[]; g_res text[];
    s_created integer[]; s_failed boolean[]; s_res text[]; s_ts bigint;
    burn boolean[];
    ts_next bigint;
    code text; fl integer; pv boolean; j integer; dpos integer; cpos integer;
    amt bigint; pam bigint; cur text;
    chain_start integer := 0; chain_failed boolean := false;
BEGIN
    results := array_fill(NULL::text, ARRAY[n]);
    timestamps := array_fill(NULL::bigint, ARRAY[n]);
    -- First look-up only to learn which accounts to lock; lock them in sorted order and read
    -- their counters (a locking read sees the latest committed values).
    SELECT array_agg(a.id), array_agg(a.shard), array_agg(a.debits_posted),
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

    -- Under the locks nothing that matters can change any more: look again. An account or a
    -- pending transfer that appeared meanwhile is not in the locked set and counts as missing,
    -- as if this batch had run first.
    SELECT array_agg(s.scode), array_agg(s.first_i),
           array_agg(s.pend_i), array_agg(s.pref_i),
           array_agg(s.ex_code), array_agg(s.failed),
           array_agg(s.journal_db), array_agg(s.p_found),
           array_agg(s.p_is_pending), array_agg(s.p_dr),
           array_agg(s.p_drs), array_agg(s.p_cr),
           array_agg(s.p_crs), array_agg(s.p_amount_),
           array_agg(s.p_currency_), array_agg(s.p_code_),
           array_agg(s.p_resolution), array_agg(s.p_expired),
           array_agg(s.dr_found), array_agg(s.dr_currency),
           array_agg(s.dr_shard), array_agg(s.cr_found),
           array_agg(s.cr_currency), array_agg(s.cr_shard)
    INTO a_scode, a_first, a_pend, a_pref, a_ex, a_failed, a_jdb, a_pfound, a_pis, a_pdr,
         a_pdrs, a_pcr, a_pcrs, a_pamount, a_pcurrency, a_pcode, a_pres, a_pexp, a_drf,
         a_drc, a_drs, a_crf, a_crc, a_crs
    FROM (SELECT * FROM ledger_resolve(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                       p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                       p_code, p_journal, p_metadata) r
          ORDER BY r.i) s;

    l_id := coalesce(l_id, '{}');
    l_touched := array_fill(false, ARRAY[greatest(cardinality(l_id), 1)]);

    SELECT array_agg(d.pos ORDER BY r.k), array_agg(c.pos ORDER BY r.k),
           array_agg(pd.pos ORDER BY r.k), array_agg(pc.pos ORDER BY r.k)
    INTO q_dr, q_cr, q_pdr, q_pcr
    FROM unnest(p_debit, a_drs, p_credit, a_crs, a_pdr, a_pdrs, a_pcr, a_pcrs)
         WITH ORDINALITY AS r(dr, drs, cr, crs, pdr, pdrs, pcr, pcrs, k)
    LEFT JOIN unnest(l_id, l_shard) WITH ORDINALITY AS d(id, shard, pos)
        ON d.id = r.dr AND d.shard = r.drs
    LEFT JOIN unnest(l_id, l_shard) WITH ORDINALITY AS c(id, shard, pos)
        ON c.id = r.cr AND c.shard = r.crs
    LEFT JOIN unnest(l_id, l_shard) WITH ORDINALITY AS pd(id, shard, pos)
        ON pd.id = r.pdr AND pd.shard = r.pdrs
    LEFT JOIN unnest(l_id, l_shard) WITH ORDINALITY AS pc(id, shard, pos)
        ON pc.id = r.pcr AND pc.shard = r.pcrs;

    ts_next := greatest(p_now, coalesce(l_ts, 0) + 1);
    g_created := array_fill(0, ARRAY[n]);
    g_failed := array_fill(false, ARRAY[n]);
    g_res := array_fill(NULL::text, ARRAY[n]);
    burn := array_fill(false, ARRAY[n]);
    r_dr := array_fill(NULL::text, ARRAY[n]); r_cr := r_dr; r_currency := r_dr; r_code := r_dr;
    r_drs := array_fill(NULL::smallint, ARRAY[n]); r_crs := r_drs;
    r_drp := array_fill(NULL::integer, ARRAY[n]); r_crp := r_drp;
    r_amount := array_fill(NULL::bigint, ARRAY[n]); r_pamount := r_amount;
    r_run := array_fill(NULL::bigint, ARRAY[n, 8]);

    FOR i IN 1 .. n LOOP
        fl := p_flags[i];
        IF chain_start > 0 AND chain_failed THEN
            code := 'linked_event_failed';
        ELSE
            IF chain_start = 0 AND fl IS NOT NULL AND fl & 1 <> 0 THEN
                chain_start := i; chain_failed := false;
                s_dp := l_dp; s_cp := l_cp; s_dpend := l_dpend; s_cpend := l_cpend;
                s_created := g_created; s_failed := g_failed; s_res := g_res; s_ts := ts_next;
            END IF;
            code := a_scode[i];
            pv := fl & 12 <> 0;
            IF code IS NULL THEN
                j := g_created[a_first[i]];
                IF a_ex[i] IS NOT NULL THEN
                    code := a_ex[i];
                ELSIF j > 0 THEN
                    code := ledger_compare(
                        fl, p_pending_id[i], p_timeout[i], p_debit[i], p_credit[i], p_amount[i],
                        p_metadata[i], p_currency[i], p_code[i], p_journal[i],
                        p_flags[j], p_pending_id[j], p_timeout[j], r_dr[j], r_cr[j],
                        r_amount[j], p_metadata[j], r_currency[j], r_code[j], p_journal[j]);
                ELSIF a_failed[i] OR g_failed[a_first[i]] THEN
                    code := 'id_already_failed';
                END IF;
            END IF;
            IF code IS NULL AND pv THEN
                -- Which pending transfer: a stored one, or one created earlier in this batch.
                IF a_pfound[i] AND q_pdr[i] IS NOT NULL AND q_pcr[i] IS NOT NULL THEN
                    j := 0;
                    dpos := q_pdr[i]; cpos := q_pcr[i];
                    r_dr[i] := a_pdr[i]; r_drs[i] := a_pdrs[i];
                    r_cr[i] := a_pcr[i]; r_crs[i] := a_pcrs[i];
                    pam := a_pamount[i]; cur := a_pcurrency[i]; r_code[i] := a_pcode[i];
                ELSIF a_pend[i] IS NOT NULL AND g_created[a_pend[i]] > 0 THEN
                    j := g_created[a_pend[i]];
                    dpos := r_drp[j]; cpos := r_crp[j];
                    r_dr[i] := r_dr[j]; r_drs[i] := r_drs[j];
                    r_cr[i] := r_cr[j]; r_crs[i] := r_crs[j];
                    pam := r_amount[j]; cur := r_currency[j]; r_code[i] := r_code[j];
                ELSE
                    code := 'pending_transfer_not_found';
                END IF;
                IF code IS NULL THEN
                    IF (j = 0 AND NOT a_pis[i]) OR (j > 0 AND p_flags[j] & 2 = 0) THEN
                        code := 'pending_transfer_not_pending';
                    ELSIF p_debit[i] IS NOT NULL AND p_debit[i] <> r_dr[i] THEN
                        code := 'pending_transfer_has_different_debit_account_id';
                    ELSIF p_credit[i] IS NOT NULL AND p_credit[i] <> r_cr[i] THEN
                        code := 'pending_transfer_has_different_credit_account_id';
                    ELSIF p_currency[i] IS NOT NULL AND p_currency[i] <> cur THEN
                        code := 'pending_transfer_has_different_currency';
                    ELSIF p_code[i] IS NOT NULL AND p_code[i] <> r_code[i] THEN
                        code := 'pending_transfer_has_different_code';
                    ELSIF fl & 4 <> 0 AND p_amount[i] IS NOT NULL AND p_amount[i] > pam THEN
                        code := 'exceeds_pending_transfer_amount';
                    ELSIF fl & 8 <> 0 AND p_amount[i] IS NOT NULL AND p_amount[i] <> pam THEN
                        code := 'pending_transfer_has_different_amount';
                    ELSE
                        code := coalesce(g_res[a_pref[i]],
                                         CASE WHEN j = 0 THEN a_pres[i] END);
                        IF code IS NOT NULL THEN
                            code := 'pending_transfer_already_' || code;
                            IF code = 'pending_transfer_already_expired' THEN
                                code := 'pending_transfer_expired';
                            END IF;
                        ELSIF j = 0 AND a_pexp[i] AND fl & 16 = 0 THEN
                            code := 'pending_transfer_expired';
                        ELSIF fl & 16 <> 0 AND NOT (j = 0 AND a_pexp[i]) THEN
                            code := 'pending_transfer_not_expired';
                        END IF;
                    END IF;
                END IF;
                IF code IS NULL THEN
                    amt := CASE WHEN fl & 4 <> 0 THEN coalesce(p_amount[i], pam) ELSE pam END;
                END IF;
            ELSIF code IS NULL THEN
                dpos := q_dr[i]; cpos := q_cr[i];
                pam := 0; amt := p_amount[i]; cur := p_currency[i]; r_code[i] := p_code[i];
                r_dr[i] := p_debit[i]; r_drs[i] := a_drs[i];
                r_cr[i] := p_credit[i]; r_crs[i] := a_crs[i];
                IF NOT a_drf[i] OR dpos IS NULL THEN
                    code := 'debit_account_not_found';
                ELSIF NOT a_crf[i] OR cpos IS NULL THEN
                    code := 'credit_account_not_found';
                ELSIF a_drc[i] <> a_crc[i] THEN
                    code := 'accounts_must_have_the_same_currency';
                ELSIF a_drc[i] <> cur THEN
                    code := 'transfer_must_have_the_same_currency_as_accounts';
                END IF;
            END IF;
            IF code IS NULL AND a_jdb[i] THEN
                code := 'journal_already_exists';
            END IF;
            IF code IS NULL AND fl & 8 = 0 THEN
                IF l_closed[dpos] THEN
                    code := 'debit_account_already_closed';
                ELSIF l_closed[cpos] THEN
                    code := 'credit_account_already_closed';
                END IF;
            END IF;
            IF code IS NULL AND NOT pv THEN
                IF l_dp[dpos]::numeric + l_dpend[dpos] + amt > c_max THEN
                    code := 'overflows_debits';
                ELSIF l_cp[cpos]::numeric + l_cpend[cpos] + amt > c_max THEN
                    code := 'overflows_credits';
                ELSIF l_dlim[dpos] AND l_dp[dpos] + l_dpend[dpos] + amt > l_cp[dpos] THEN
                    code := 'exceeds_credits';
                ELSIF l_clim[cpos] AND l_cp[cpos] + l_cpend[cpos] + amt > l_dp[cpos] THEN
                    code := 'exceeds_debits';
                END IF;
            END IF;

            IF code IS NULL THEN
                IF fl & 2 <> 0 THEN
                    l_dpend[dpos] := l_dpend[dpos] + amt; l_cpend[cpos] := l_cpend[cpos] + amt;
                ELSIF pv THEN
                    l_dpend[dpos] := l_dpend[dpos] - pam; l_cpend[cpos] := l_cpend[cpos] - pam;
                    IF fl & 4 <> 0 THEN
                        l_dp[dpos] := l_dp[dpos] + amt; l_cp[cpos] := l_cp[cpos] + amt;
                    END IF;
                    g_res[a_pref[i]] := CASE WHEN fl & 16 <> 0 THEN 'expired'
                                             WHEN fl & 4 <> 0 THEN 'posted' ELSE 'voided' END;
                ELSE
                    l_dp[dpos] := l_dp[dpos] + amt; l_cp[cpos] := l_cp[cpos] + amt;
                END IF;
                l_touched[dpos] := true; l_touched[cpos] := true;
                r_drp[i] := dpos; r_crp[i] := cpos; r_amount[i] := amt; r_pamount[i] := pam;
                r_currency[i] := cur;
                r_run[i][1] := l_dp[dpos]; r_run[i][2] := l_cp[dpos];
                r_run[i][3] := l_dpend[dpos]; r_run[i][4] := l_cpend[dpos];
                r_run[i][5] := l_dp[cpos]; r_run[i][6] := l_cp[cpos];
                r_run[i][7] := l_dpend[cpos]; r_run[i][8] := l_cpend[cpos];
                timestamps[i] := ts_next;
                ts_next := ts_next + 1;
                g_created[a_first[i]] := i;
            ELSIF code <> 'exists' THEN
                IF code IN ('debit_account_not_found', 'credit_account_not_found',
                            'pending_transfer_not_found', 'exceeds_credits', 'exceeds_debits',
                            'debit_account_already_closed', 'credit_account_already_closed',
                            'overflows_debits', 'overflows_credits') THEN
                    burn[i] := true;
                END IF;
                IF chain_start > 0 THEN
                    l_dp := s_dp; l_cp := s_cp; l_dpend := s_dpend; l_cpend := s_cpend;
                    g_created := s_created; g_failed := s_failed; g_res := s_res;
                    ts_next := s_ts;
                    FOR k IN chain_start .. i - 1 LOOP
                        results[k] := 'linked_event_failed';
                        timestamps[k] := NULL;
                    END LOOP;
                    chain_failed := true;
                END IF;
                IF burn[i] THEN
                    g_failed[a_first[i]] := true;
                END IF;
            END IF;
        END IF;
        results[i] := code;
        IF chain_start > 0 AND (fl IS NULL OR fl & 1 = 0) THEN
            chain_start := 0; chain_failed := false;
        END IF;
    END LOOP;

    -- A failed chain member created earlier in the chain is not created after all.
    FOR i IN 1 .. n LOOP
        IF results[i] IS NOT NULL THEN
            timestamps[i] := NULL;
        END IF;
        IF burn[i] AND results[i] IS NOT DISTINCT FROM 'linked_event_failed' THEN
            burn[i] := false;
        END IF;
    END LOOP;

    INSERT INTO ledger_transfers (
        merchant_id, id, livemode, ts, debit_account_id, debit_shard, credit_account_id,
        credit_shard, amount, currency, flags, pending_id, timeout, code, journal_id, metadata,
        dr_debits_posted, dr_credits_posted, dr_debits_pending, dr_credits_pending,
        cr_debits_posted, cr_credits_posted, cr_debits_pending, cr_credits_pending)
    SELECT p_merchant, p_id[k], p_livemode, timestamps[k], r_dr[k], r_drs[k], r_cr[k], r_crs[k],
        r_amount[k], r_currency[k], p_flags[k], p_pending_id[k], p_timeout[k], r_code[k],
        p_journal[k], p_metadata[k], r_run[k][1], r_run[k][2], r_run[k][3], r_run[k][4],
        r_run[k][5], r_run[k][6], r_run[k][7], r_run[k][8]
    FROM generate_subscripts(p_id, 1) AS k
    WHERE timestamps[k] IS NOT NULL;

    UPDATE ledger_accounts a
    SET debits_posted = u.dp, credits_posted = u.cp, debits_pending = u.dpend,
        credits_pending = u.cpend, last_ts = ts_next - 1
    FROM unnest(l_id, l_shard, l_dp, l_cp, l_dpend, l_cpend, l_touched)
         AS u(id, shard, dp, cp, dpend, cpend, touched)
    WHERE u.touched AND a.merchant_id = p_merchant AND a.id = u.id AND a.shard = u.shard;

    INSERT INTO ledger_journal_entries (merchant_id, id, livemode, transfer_count, ts)
    SELECT p_merchant, p_journal[k], p_livemode, count(*), min(timestamps[k])
    FROM generate_subscripts(p_id, 1) AS k
    WHERE timestamps[k] IS NOT NULL AND p_journal[k] IS NOT NULL
    GROUP BY p_journal[k];

    INSERT INTO ledger_failed_transfers (merchant_id, id, livemode, result, ts)
    SELECT p_merchant, p_id[k], p_livemode, results[k], p_now
    FROM generate_subscripts(p_id, 1) AS k
    WHERE burn[k]
    ON CONFLICT DO NOTHING;

    PERFORM ledger_track_timeouts(
        p_merchant, p_livemode, 0,
        array_agg(p_id[k] ORDER BY k), array_agg(p_flags[k] ORDER BY k),
        array_agg(p_pending_id[k] ORDER BY k), array_agg(p_timeout[k] ORDER BY k),
        array_agg(timestamps[k] ORDER BY k))
    FROM generate_subscripts(p_id, 1) AS k
    WHERE timestamps[k] IS NOT NULL
    HAVING count(*) > 0;
END $$;
"""

# The entry point: one call, one round trip, per batch. p_mode 1 skips the fast path (tests
# compare both). A unique violation means a concurrent batch committed the same id or resolved
# the same pending transfer after our look-ups; looking again then sees it.
POST = """
CREATE FUNCTION ledger_post(
    p_merchant text, p_livemode boolean, p_now bigint,
    p_id text[], p_debit text[], p_credit text[], p_amount bigint[], p_currency text[],
    p_flags integer[], p_pending_id text[], p_timeout integer[], p_code text[],
    p_journal text[], p_metadata jsonb[], p_mode integer DEFAULT 0,
    OUT results text[], OUT timestamps bigint[]
) LANGUAGE plpgsql AS $$
DECLARE
    v_done boolean;
BEGIN
    IF coalesce(cardinality(p_id), 0) = 0 THEN
        results := '{}'; timestamps := '{}';
        RETURN;
    END IF;
    IF p_mode = 0 THEN
        BEGIN
            IF cardinality(p_id) <= 64 THEN
                SELECT f.done, f.results, f.timestamps INTO v_done, results, timestamps
                FROM ledger_post_fast_small(p_merchant, p_livemode, p_now, p_id, p_debit,
                                            p_credit, p_amount, p_currency, p_flags,
                                            p_pending_id, p_timeout, p_code, p_journal,
                                            p_metadata) f;
            ELSE
                SELECT f.done, f.results, f.timestamps INTO v_done, results, timestamps
                FROM ledger_post_fast(p_merchant, p_livemode, p_now, p_id, p_debit, p_credit,
                                      p_amount, p_currency, p_flags, p_pending_id, p_timeout,
                                      p_code, p_journal, p_metadata) f;
            END IF;
            IF v_done THEN
                RETURN;
            END IF;
            -- Declined: roll the attempt back to release its row locks. Keeping them while
            -- the sequential path locks its (larger) set would take locks out of order.
            RAISE SQLSTATE 'LD001';
        EXCEPTION
            WHEN unique_violation OR check_violation OR numeric_value_out_of_range
                 OR SQLSTATE 'LD001' THEN
                NULL;
        END;
    END IF;
    FOR attempt IN 1 .. 5 LOOP
        BEGIN
            SELECT s.results, s.timestamps INTO results, timestamps
            FROM ledger_post_sequential(p_merchant, p_livemode, p_now, p_id, p_debit,
                                        p_credit, p_amount, p_currency, p_flags, p_pending_id,
                                        p_timeout, p_code, p_journal, p_metadata) s;
            RETURN;
        EXCEPTION WHEN unique_violation THEN
            IF attempt = 5 THEN
                RAISE;
            END IF;
        END;
    END LOOP;
END $$;
"""


# Two copies of the fast path: small batches reuse one generic plan per session (planning
# would cost more than executing); large ones are planned for their size (a generic plan's
# nested loops cost more than planning).
FAST_PLANNED = FAST.replace("{name}", "ledger_post_fast").replace("{settings}", "")
FAST_GENERIC = FAST.replace("{name}", "ledger_post_fast_small").replace(
    "{settings}", "SET plan_cache_mode = force_generic_plan"
)


def upgrade() -> None:
    op.execute(
        TABLES + COMPARE + RESOLVE + TIMEOUTS + FAST_PLANNED + FAST_GENERIC + SEQUENTIAL + POST
    )


def downgrade() -> None:
    op.execute("""
    DROP FUNCTION ledger_post(text, boolean, bigint, text[], text[], text[], bigint[], text[],
        integer[], text[], integer[], text[], text[], jsonb[], integer);
    DROP FUNCTION ledger_post_sequential(text, boolean, bigint, text[], text[], text[],
        bigint[], text[], integer[], text[], integer[], text[], text[], jsonb[]);
    DROP FUNCTION ledger_post_fast(text, boolean, bigint, text[], text[], text[], bigint[],
        text[], integer[], text[], integer[], text[], text[], jsonb[]);
    DROP FUNCTION ledger_post_fast_small(text, boolean, bigint, text[], text[], text[],
        bigint[], text[], integer[], text[], integer[], text[], text[], jsonb[]);
    DROP FUNCTION ledger_track_timeouts(text, boolean, bigint, text[], integer[], text[],
        integer[], bigint[]);
    DROP FUNCTION ledger_resolve(text, boolean, bigint, text[], text[], text[], bigint[],
        text[], integer[], text[], integer[], text[], text[], jsonb[]);
    DROP FUNCTION ledger_compare(integer, text, integer, text, text, bigint, jsonb, text, text,
        text, integer, text, integer, text, text, bigint, jsonb, text, text, text);
    DROP TABLE ledger_pending_timeouts;
    DROP TABLE ledger_failed_transfers;
    DROP TABLE ledger_journal_entries;
    DROP TABLE ledger_transfers;
    DROP TABLE ledger_accounts;
    DROP FUNCTION ledger_append_only();
    """)
