"""When an intent's capture, cancel or expiry started (``operation_started_at``), so the sweep
can recover one a killed process left busy.

Revision ID: payments_0004
Revises: payments_0003
"""

from alembic import op

revision = "payments_0004"
down_revision = "payments_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Set with ``operation`` (to a non-null value), cleared with it.
    ALTER TABLE payment_intents ADD COLUMN operation_started_at timestamptz;
    -- Operations already waiting when this runs count from now: the sweep sees them in 2 min.
    UPDATE payment_intents SET operation_started_at = now() WHERE operation IS NOT NULL;
    CREATE INDEX payment_intents_busy ON payment_intents (operation_started_at)
        WHERE operation IS NOT NULL;
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX payment_intents_busy;
    ALTER TABLE payment_intents DROP COLUMN operation_started_at;
    """)
