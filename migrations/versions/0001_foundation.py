"""Foundation: idempotency keys, merchants and their API keys, customers.

Revision ID: 0001_foundation
Revises:
"""

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE idempotency_keys (
        merchant_id     text COLLATE "C" NOT NULL,
        livemode        boolean NOT NULL,
        key             text NOT NULL,
        fingerprint     bytea NOT NULL,
        status          text NOT NULL CHECK (status IN ('in_flight', 'completed')),
        response_status integer,
        response_body   jsonb,
        request_id      text NOT NULL,
        created_at      timestamptz NOT NULL,
        completed_at    timestamptz,
        PRIMARY KEY (merchant_id, livemode, key)
    );
    CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

    CREATE TABLE merchants (
        id               text COLLATE "C" PRIMARY KEY,
        name             text NOT NULL,
        email            text,
        country          text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
        default_currency text NOT NULL CHECK (default_currency ~ '^[a-z]{3}$'),
        kyc_status       text NOT NULL DEFAULT 'unverified'
                         CHECK (kyc_status IN ('unverified', 'pending', 'verified', 'rejected')),
        platform_admin   boolean NOT NULL DEFAULT false,
        metadata         jsonb NOT NULL DEFAULT '{}',
        created_at       timestamptz NOT NULL
    );

    CREATE TABLE api_keys (
        id          text COLLATE "C" PRIMARY KEY,
        merchant_id text COLLATE "C" NOT NULL REFERENCES merchants (id),
        kind        text NOT NULL CHECK (kind IN ('secret', 'publishable', 'restricted')),
        livemode    boolean NOT NULL,
        key_hash    text NOT NULL UNIQUE,
        -- Publishable keys are not secrets (they ship in web pages), so they are kept to show
        -- again; secret and restricted keys are shown once and only their hash is kept.
        plaintext   text,
        display     text NOT NULL,
        name        text,
        permissions jsonb NOT NULL DEFAULT '{}',
        created_at  timestamptz NOT NULL,
        expires_at  timestamptz,
        CHECK (plaintext IS NULL OR kind = 'publishable')
    );
    CREATE INDEX api_keys_merchant ON api_keys (merchant_id, livemode);

    CREATE TABLE customers (
        merchant_id text COLLATE "C" NOT NULL REFERENCES merchants (id),
        id          text COLLATE "C" NOT NULL,
        livemode    boolean NOT NULL,
        created_at  timestamptz NOT NULL,
        description text,
        metadata    jsonb NOT NULL DEFAULT '{}',
        -- name, email, phone, address and shipping, sealed with the record's own data key;
        -- erasing pii_key crypto-shreds them.
        pii         bytea,
        pii_key     bytea,
        email_index bytea,
        deleted_at  timestamptz,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX customers_list ON customers (merchant_id, livemode, id DESC)
        WHERE deleted_at IS NULL;
    CREATE INDEX customers_email ON customers (merchant_id, livemode, email_index)
        WHERE deleted_at IS NULL;
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE customers;
    DROP TABLE api_keys;
    DROP TABLE merchants;
    DROP TABLE idempotency_keys;
    """)
