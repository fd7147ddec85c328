"""The Idempotency-Key of the request that began an intent's capture or cancel
(``operation_idempotency_key``), so the sweep that finishes an operation a killed process left
can also finish that request's key: the response it books is replayed to the client's retry,
instead of 409 ``idempotency_key_in_use`` until the key expires a day later.

Revision ID: payments_0006
Revises: payments_0005
"""

from alembic import op

revision = "payments_0006"
down_revision = "payments_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment_intents ADD COLUMN operation_idempotency_key text")


def downgrade() -> None:
    op.execute("ALTER TABLE payment_intents DROP COLUMN operation_idempotency_key")
