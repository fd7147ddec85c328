"""Merchant routing rules: conditions, a priority and one connector, a ranked set or a split.

Revision ID: routing_0001
Depends on: payments_0002
"""

from alembic import op

revision = "routing_0001"
down_revision = None
branch_labels = ("routing",)
depends_on = "payments_0002"


def upgrade() -> None:
    op.execute("""
    CREATE TABLE routing_rules (
        merchant_id           text COLLATE "C" NOT NULL REFERENCES merchants (id),
        id                    text COLLATE "C" NOT NULL,
        livemode              boolean NOT NULL,
        created_at            timestamptz NOT NULL,
        -- Lower is evaluated first; ties by id (creation order).
        priority              integer NOT NULL CHECK (priority >= 0),
        description           text,
        -- Conditions: NULL matches anything.
        currencies            text[],
        card_brands           text[],
        card_countries        text[],
        min_amount            bigint CHECK (min_amount >= 0),
        max_amount            bigint CHECK (max_amount >= 0),
        payment_method_types  text[],
        -- The action: exactly one of these.
        connector             text,
        connectors            text[],
        split                 jsonb,
        PRIMARY KEY (merchant_id, id),
        CHECK (num_nonnulls(connector, connectors, split) = 1),
        CHECK (min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount)
    );
    CREATE INDEX routing_rules_in_order ON routing_rules (merchant_id, livemode, priority, id);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE routing_rules;")
