"""What the request that began an intent's capture or cancel asked for
(``operation_request``: its Idempotency-Key, and the ``metadata`` or ``cancellation_reason``
it carried), so the sweep that finishes an operation a killed process left applies the whole
request and finishes that request's key: its retry replays the booked intent instead of
answering 409 ``idempotency_key_in_use`` until the key expires a day later.

Revision ID: payments_0006
Revises: payments_0005
"""

from alembic import op

revision = "payments_0006"
down_revision = "payments_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment_intents ADD COLUMN operation_request jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE payment_intents DROP COLUMN operation_request")
