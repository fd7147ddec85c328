"""Connector resilience: shared circuit breakers, the error policy operators edit, and the
manual-review flag on attempts whose outcome no inquiry could learn.

Revision ID: resilience_0001
Revises:
"""

from alembic import op

revision = "resilience_0001"
down_revision = None
branch_labels = ("resilience",)
depends_on = "payments_0002"


def upgrade() -> None:
    op.execute("""
    -- One row per connector whose breaker ever left "closed"; written only on transitions.
    CREATE TABLE connector_breakers (
        connector    text COLLATE "C" PRIMARY KEY,
        state        text NOT NULL DEFAULT 'closed'
                         CHECK (state IN ('closed', 'open', 'half_open')),
        opened_at    timestamptz,
        retry_at     timestamptz,
        probes_left  integer NOT NULL DEFAULT 0 CHECK (probes_left >= 0),
        probe_until  timestamptz,
        generation   bigint NOT NULL DEFAULT 0,
        reason       text,
        updated_at   timestamptz NOT NULL
    );
    -- (connector or '*', code) → what the payment path does after that error.
    CREATE TABLE connector_error_policies (
        connector   text COLLATE "C" NOT NULL,
        code        text COLLATE "C" NOT NULL,
        action      text NOT NULL CHECK (action IN ('retry', 'cascade', 'stop')),
        note        text,
        updated_at  timestamptz NOT NULL,
        PRIMARY KEY (connector, code)
    );
    -- Every status inquiry on the schedule came back without an answer: an operator decides.
    ALTER TABLE charges ADD COLUMN review_since timestamptz;
    CREATE INDEX charges_in_review ON charges (review_since) WHERE review_since IS NOT NULL;
    -- The sweep looks for attempts a dead process left with no recorded outcome at all.
    CREATE INDEX charges_unanswered ON charges (created_at) WHERE outcome = 'pending';
    """)


def downgrade() -> None:
    op.execute("""
    DROP INDEX charges_unanswered;
    DROP INDEX charges_in_review;
    ALTER TABLE charges DROP COLUMN review_since;
    DROP TABLE connector_error_policies;
    DROP TABLE connector_breakers;
    """)
