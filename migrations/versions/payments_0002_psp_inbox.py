"""The inbox of PSP notifications, deduplicated by the PSP's event id.

Revision ID: payments_0002
Revises: payments_0001
"""

from alembic import op

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE psp_inbox (
        connector     text NOT NULL,
        event_id      text NOT NULL,
        received_at   timestamptz NOT NULL,
        kind          text NOT NULL,
        event         jsonb NOT NULL,
        processed_at  timestamptz,
        -- What processing did with it (applied, duplicate, ignored: why), for operators.
        outcome       text,
        attempts      integer NOT NULL DEFAULT 0,
        PRIMARY KEY (connector, event_id)
    );
    CREATE INDEX psp_inbox_unprocessed ON psp_inbox (received_at) WHERE processed_at IS NULL;
    -- A notification names our attempt or refund id, not the merchant: find them by id.
    CREATE INDEX charges_by_id ON charges (id);
    CREATE INDEX refunds_by_id ON refunds (id);
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX refunds_by_id;
    DROP INDEX charges_by_id;
    DROP TABLE psp_inbox;
    """)
