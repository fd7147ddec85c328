"""Events: the outbox.

Revision ID: events_0001
Revises:
"""

from alembic import op

revision = "events_0001"
down_revision = None
branch_labels = ("events",)
depends_on = "0001_foundation"


def upgrade() -> None:
    op.execute("""
    CREATE TABLE events (
        merchant_id     text COLLATE "C" NOT NULL,
        id              text COLLATE "C" NOT NULL,
        livemode        boolean NOT NULL,
        type            text NOT NULL,
        api_version     text NOT NULL,
        created_at      timestamptz NOT NULL,
        object_id       text COLLATE "C",
        data            jsonb NOT NULL,
        request_id      text,
        idempotency_key text,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX events_list ON events (merchant_id, livemode, id DESC);
    CREATE INDEX events_by_type ON events (merchant_id, livemode, type, id DESC);
    CREATE INDEX events_by_object ON events (merchant_id, object_id);
    CREATE INDEX events_retention ON events (created_at);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE events;")
