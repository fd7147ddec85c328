"""Vault: payment methods, with card numbers sealed under per-record data keys; customers'
default payment method.

Revision ID: vault_0001
Revises:
"""

from alembic import op

revision = "vault_0001"
down_revision = None
branch_labels = ("vault",)
depends_on = "0001_foundation"


def upgrade() -> None:
    op.execute("""
    CREATE TABLE payment_methods (
        merchant_id     text COLLATE "C" NOT NULL REFERENCES merchants (id),
        id              text COLLATE "C" NOT NULL,
        livemode        boolean NOT NULL,
        type            text NOT NULL DEFAULT 'card' CHECK (type = 'card'),
        created_at      timestamptz NOT NULL,
        -- What may be shown and searched: never enough to rebuild the number.
        brand           text NOT NULL,
        last4           text NOT NULL CHECK (last4 ~ '^[0-9]{4}$'),
        exp_month       smallint NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
        exp_year        smallint NOT NULL CHECK (exp_year BETWEEN 2000 AND 2200),
        fingerprint     text COLLATE "C" NOT NULL,
        funding         text NOT NULL,
        country         text CHECK (country ~ '^[A-Z]{2}$'),
        -- The card number, AES-256-GCM under its own data key (pan_key, wrapped by the KEK
        -- named in kek_id), bound to the row's id. The CVC is never stored.
        pan             bytea NOT NULL,
        pan_key         bytea NOT NULL,
        -- Billing name, email, phone and address: personal data, sealed like customers'.
        billing_details bytea,
        billing_key     bytea,
        kek_id          text COLLATE "C" NOT NULL,
        cvc_check       text,
        address_line1_check       text,
        address_postal_code_check text,
        allow_redisplay text NOT NULL DEFAULT 'unspecified',
        customer_id     text COLLATE "C",
        -- Stripe's rule: a detached payment method can never be used or attached again.
        detached_at     timestamptz,
        metadata        jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (merchant_id, id),
        FOREIGN KEY (merchant_id, customer_id) REFERENCES customers (merchant_id, id),
        CHECK ((billing_details IS NULL) = (billing_key IS NULL))
    );
    CREATE INDEX payment_methods_list ON payment_methods (merchant_id, livemode, id DESC);
    CREATE INDEX payment_methods_by_customer ON payment_methods
        (merchant_id, livemode, customer_id, id DESC) WHERE customer_id IS NOT NULL;
    -- Same card seen before (duplicate detection, fraud velocity per card).
    CREATE INDEX payment_methods_fingerprint ON payment_methods (merchant_id, fingerprint);
    -- `kassa vault rotate-kek` finds each merchant's rows still wrapped by an old KEK.
    CREATE INDEX payment_methods_kek ON payment_methods (merchant_id, kek_id);

    ALTER TABLE customers ADD COLUMN default_payment_method text COLLATE "C";
    ALTER TABLE customers ADD CONSTRAINT customers_default_payment_method_fkey
        FOREIGN KEY (merchant_id, default_payment_method)
        REFERENCES payment_methods (merchant_id, id);
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE customers DROP COLUMN default_payment_method;
    DROP TABLE payment_methods;
    """)
