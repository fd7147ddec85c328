"""Ledger: a transfer's accounts checked once per statement instead of by two composite
foreign keys per row.

The composite foreign keys (merchant, account, shard, mode, currency) made PostgreSQL probe
the accounts' index twice for every transfer row: about a fifth of a 1,000-transfer batch's
database time. A statement-level trigger over the inserted rows checks the same thing with one
join per statement, and two more triggers keep what the keys guaranteed on the other side: an
account's identity (merchant, id, shard, mode, currency) never changes and an account is never
deleted. The schema still refuses a transfer whose currency or mode is not its accounts'.

Revision ID: ledger_0002
Revises: ledger_0001
"""

from alembic import op

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    DO $$
    DECLARE c record;
    BEGIN
        FOR c IN SELECT conname FROM pg_constraint
                 WHERE conrelid = 'ledger_transfers'::regclass AND contype = 'f'
                   AND confrelid = 'ledger_accounts'::regclass
        LOOP
            EXECUTE format('ALTER TABLE ledger_transfers DROP CONSTRAINT %I', c.conname);
        END LOOP;
    END $$;

    CREATE FUNCTION ledger_transfers_match_accounts() RETURNS trigger
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
    CREATE TRIGGER ledger_transfers_match_accounts AFTER INSERT ON ledger_transfers
        REFERENCING NEW TABLE AS inserted
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_match_accounts();

    CREATE FUNCTION ledger_account_identity_fixed() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger account %: its merchant, id, shard, mode and currency never '
            'change, and it is never deleted (close it instead)', OLD.id
            USING ERRCODE = 'restrict_violation';
    END $$;
    CREATE TRIGGER ledger_accounts_identity_fixed
        BEFORE UPDATE OF merchant_id, id, shard, livemode, currency ON ledger_accounts
        FOR EACH ROW
        WHEN ((OLD.merchant_id, OLD.id, OLD.shard, OLD.livemode, OLD.currency)
              IS DISTINCT FROM (NEW.merchant_id, NEW.id, NEW.shard, NEW.livemode, NEW.currency))
        EXECUTE FUNCTION ledger_account_identity_fixed();
    CREATE TRIGGER ledger_accounts_never_deleted BEFORE DELETE ON ledger_accounts
        FOR EACH ROW EXECUTE FUNCTION ledger_account_identity_fixed();
    CREATE TRIGGER ledger_accounts_never_truncated BEFORE TRUNCATE ON ledger_accounts
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER ledger_accounts_never_truncated ON ledger_accounts;
    DROP TRIGGER ledger_accounts_never_deleted ON ledger_accounts;
    DROP TRIGGER ledger_accounts_identity_fixed ON ledger_accounts;
    DROP FUNCTION ledger_account_identity_fixed();
    DROP TRIGGER ledger_transfers_match_accounts ON ledger_transfers;
    DROP FUNCTION ledger_transfers_match_accounts();
    ALTER TABLE ledger_transfers
        ADD FOREIGN KEY (merchant_id, debit_account_id, debit_shard, livemode, currency)
            REFERENCES ledger_accounts (merchant_id, id, shard, livemode, currency),
        ADD FOREIGN KEY (merchant_id, credit_account_id, credit_shard, livemode, currency)
            REFERENCES ledger_accounts (merchant_id, id, shard, livemode, currency);
    """)
