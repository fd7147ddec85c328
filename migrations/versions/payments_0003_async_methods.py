"""Asynchronous payment methods: an intent's ``payment_method_types``, and charges whose
debit is on a bank rail (``processing``) or came back after settling (``returned``).

Revision ID: payments_0003
Revises: payments_0002
"""

from alembic import op

revision = "payments_0003"
down_revision = "payments_0002"
branch_labels = None
depends_on = ("vault_0002",)


def upgrade() -> None:
    op.execute("""
    ALTER TABLE payment_intents ADD COLUMN payment_method_types text[];
    ALTER TABLE charges DROP CONSTRAINT charges_outcome_check;
    ALTER TABLE charges ADD CONSTRAINT charges_outcome_check CHECK (outcome IN
        ('pending', 'unknown', 'authorized', 'captured', 'declined', 'requires_action',
         'not_sent', 'processing', 'returned'));
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE charges DROP CONSTRAINT charges_outcome_check;
    ALTER TABLE charges ADD CONSTRAINT charges_outcome_check CHECK (outcome IN
        ('pending', 'unknown', 'authorized', 'captured', 'declined', 'requires_action',
         'not_sent'));
    ALTER TABLE payment_intents DROP COLUMN payment_method_types;
    """)
