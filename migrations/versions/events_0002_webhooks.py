"""Events: the outbox queues, webhook endpoints, deliveries and their attempt log.

``emit`` writes the event and one ``event_outbox`` row per registered consumer in one
statement. Consumers (the webhook dispatcher, each NATS relay) take their rows with
``FOR UPDATE SKIP LOCKED`` and delete them when done, so nothing depends on a sequence cursor:
a row committed late with a low ``seq`` is still found.

Revision ID: events_0002
Revises: events_0001
"""

from alembic import op

revision = "events_0002"
down_revision = "events_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE event_consumers (
        name       text COLLATE "C" PRIMARY KEY,
        created_at timestamptz NOT NULL
    );
    INSERT INTO event_consumers (name, created_at) VALUES ('webhooks', now());

    CREATE TABLE event_outbox (
        consumer    text COLLATE "C" NOT NULL,
        seq         bigint GENERATED ALWAYS AS IDENTITY,
        merchant_id text COLLATE "C" NOT NULL,
        event_id    text COLLATE "C" NOT NULL,
        -- Set while a relay is publishing the row; an expired lease means the relay died.
        lease_until timestamptz,
        PRIMARY KEY (consumer, seq)
    );

    CREATE TABLE webhook_endpoints (
        merchant_id     text COLLATE "C" NOT NULL,
        id              text COLLATE "C" NOT NULL,
        livemode        boolean NOT NULL,
        url             text NOT NULL,
        enabled_events  text[] NOT NULL,
        description     text,
        metadata        jsonb NOT NULL DEFAULT '{}',
        api_version     text,
        status          text NOT NULL CHECK (status IN ('enabled', 'disabled')),
        disabled_reason text,
        -- The signing secrets (current and any still in their rotation grace period), sealed
        -- under the record's own data key (core.keyring): never stored in plaintext.
        secrets_key     bytea NOT NULL,
        secrets         bytea NOT NULL,
        failing_since   timestamptz,
        created_at      timestamptz NOT NULL,
        deleted_at      timestamptz,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX webhook_endpoints_list ON webhook_endpoints (merchant_id, livemode, id DESC)
        WHERE deleted_at IS NULL;
    -- Operators' CLI finds an endpoint by its id alone.
    CREATE UNIQUE INDEX webhook_endpoints_id ON webhook_endpoints (id);

    CREATE TABLE webhook_deliveries (
        merchant_id      text COLLATE "C" NOT NULL,
        id               text COLLATE "C" NOT NULL,
        endpoint_id      text COLLATE "C" NOT NULL,
        event_id         text COLLATE "C" NOT NULL,
        livemode         boolean NOT NULL,
        event_type       text NOT NULL,
        status           text NOT NULL
                         CHECK (status IN ('pending', 'succeeded', 'dead', 'parked', 'canceled')),
        dead_reason      text,
        attempt_count    integer NOT NULL DEFAULT 0,
        -- Failures since the current retry window opened (the backoff exponent).
        round_attempts   integer NOT NULL DEFAULT 0,
        -- Consecutive processing failures in Kassa itself (not HTTP failures): poison pills.
        crashes          integer NOT NULL DEFAULT 0,
        retry_from       timestamptz NOT NULL,
        next_attempt_at  timestamptz NOT NULL,
        lease_until      timestamptz,
        last_status_code integer,
        last_error       text,
        created_at       timestamptz NOT NULL,
        delivered_at     timestamptz,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE UNIQUE INDEX webhook_deliveries_event
        ON webhook_deliveries (merchant_id, event_id, endpoint_id);
    CREATE INDEX webhook_deliveries_list
        ON webhook_deliveries (merchant_id, endpoint_id, id DESC);
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
        WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_endpoint_due
        ON webhook_deliveries (merchant_id, endpoint_id, next_attempt_at)
        WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (merchant_id, endpoint_id)
        WHERE lease_until IS NOT NULL;
    CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (merchant_id, endpoint_id)
        WHERE status IN ('dead', 'parked');
    CREATE INDEX webhook_deliveries_retention ON webhook_deliveries (created_at)
        WHERE status <> 'pending';

    CREATE TABLE webhook_delivery_attempts (
        merchant_id   text COLLATE "C" NOT NULL,
        id            text COLLATE "C" NOT NULL,
        delivery_id   text COLLATE "C" NOT NULL,
        endpoint_id   text COLLATE "C" NOT NULL,
        event_id      text COLLATE "C" NOT NULL,
        livemode      boolean NOT NULL,
        attempt       integer NOT NULL,
        created_at    timestamptz NOT NULL,
        succeeded     boolean NOT NULL,
        status_code   integer,
        latency_ms    integer,
        response_body text,
        error         text,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX webhook_delivery_attempts_list
        ON webhook_delivery_attempts (merchant_id, endpoint_id, id DESC);
    CREATE INDEX webhook_delivery_attempts_retention ON webhook_delivery_attempts (created_at);
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE webhook_delivery_attempts, webhook_deliveries, webhook_endpoints, event_outbox,
        event_consumers;
    """)
