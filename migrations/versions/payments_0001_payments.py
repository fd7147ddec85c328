"""Payments: intents, charges (one per attempt), refunds, balance transactions, fee plans.

Revision ID: payments_0001
Revises:
"""

from alembic import op

revision = "payments_0001"
down_revision = None
branch_labels = ("payments",)
depends_on = ("0002_jobs", "vault_0001", "ledger_0001", "events_0001")


def upgrade() -> None:
    op.execute("""
    CREATE TABLE payment_intents (
        merchant_id          text COLLATE "C" NOT NULL REFERENCES merchants (id),
        id                   text COLLATE "C" NOT NULL,
        livemode             boolean NOT NULL,
        created_at           timestamptz NOT NULL,
        amount               bigint NOT NULL CHECK (amount > 0),
        currency             text NOT NULL,
        status               text NOT NULL,
        capture_method       text NOT NULL CHECK (capture_method IN
                                 ('automatic', 'automatic_async', 'manual')),
        confirmation_method  text NOT NULL DEFAULT 'automatic',
        customer_id          text COLLATE "C",
        payment_method_id    text COLLATE "C",
        description          text,
        receipt_email        text,
        statement_descriptor text,
        return_url           text,
        metadata             jsonb NOT NULL DEFAULT '{}',
        client_secret        text NOT NULL,
        amount_capturable    bigint NOT NULL DEFAULT 0,
        amount_received      bigint NOT NULL DEFAULT 0,
        latest_charge        text COLLATE "C",
        last_payment_error   jsonb,
        next_action          jsonb,
        cancellation_reason  text,
        canceled_at          timestamptz,
        authorized_at        timestamptz,
        -- An operation (confirm, capture, cancel) waiting on a PSP: others must wait for it.
        operation            text,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX payment_intents_list ON payment_intents (merchant_id, livemode, id DESC);
    CREATE INDEX payment_intents_customer
        ON payment_intents (merchant_id, livemode, customer_id, id DESC)
        WHERE customer_id IS NOT NULL;
    CREATE INDEX payment_intents_uncaptured ON payment_intents (authorized_at)
        WHERE status = 'requires_capture';

    CREATE TABLE payment_intent_transitions (
        merchant_id text COLLATE "C" NOT NULL,
        intent_id   text COLLATE "C" NOT NULL,
        seq         bigint GENERATED ALWAYS AS IDENTITY,
        old_status  text,
        new_status  text NOT NULL,
        source      text NOT NULL CHECK (source IN ('api', 'psp_webhook', 'system')),
        request_id  text,
        created_at  timestamptz NOT NULL,
        PRIMARY KEY (merchant_id, intent_id, seq)
    );

    CREATE TABLE charges (
        merchant_id        text COLLATE "C" NOT NULL,
        id                 text COLLATE "C" NOT NULL,
        livemode           boolean NOT NULL,
        intent_id          text COLLATE "C" NOT NULL,
        created_at         timestamptz NOT NULL,
        amount             bigint NOT NULL CHECK (amount > 0),
        currency           text NOT NULL,
        status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        -- What we know of the PSP call: pending until answered, unknown when the answer was
        -- lost (a status inquiry resolves it), then the PSP's verdict.
        outcome            text NOT NULL CHECK (outcome IN
                               ('pending', 'unknown', 'authorized', 'captured', 'declined',
                                'requires_action', 'not_sent')),
        connector          text NOT NULL,
        psp_reference      text,
        capture            boolean NOT NULL,
        captured           boolean NOT NULL DEFAULT false,
        amount_captured    bigint NOT NULL DEFAULT 0,
        amount_refunded    bigint NOT NULL DEFAULT 0,
        -- Refunds sent to the PSP and not yet answered, counted against what may be refunded.
        amount_refunding   bigint NOT NULL DEFAULT 0,
        failure_code       text,
        failure_message    text,
        decline_code       text,
        payment_method_id  text COLLATE "C" NOT NULL,
        payment_method_details jsonb NOT NULL,
        customer_id        text COLLATE "C",
        description        text,
        metadata           jsonb NOT NULL DEFAULT '{}',
        routing            jsonb NOT NULL DEFAULT '{}',
        fee                bigint NOT NULL DEFAULT 0,
        balance_transaction text COLLATE "C",
        inquiries          integer NOT NULL DEFAULT 0,
        -- The Idempotency-Key of the request that began the attempt: a recovery job that
        -- finishes the saga stores the response that key replays.
        idempotency_key    text,
        CHECK (amount_refunded + amount_refunding <= amount_captured),
        CHECK (amount_captured <= amount),
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX charges_list ON charges (merchant_id, livemode, id DESC);
    CREATE INDEX charges_intent ON charges (merchant_id, intent_id);
    CREATE INDEX charges_unresolved ON charges (created_at) WHERE status = 'pending';

    CREATE TABLE refunds (
        merchant_id     text COLLATE "C" NOT NULL,
        id              text COLLATE "C" NOT NULL,
        livemode        boolean NOT NULL,
        charge_id       text COLLATE "C" NOT NULL,
        intent_id       text COLLATE "C" NOT NULL,
        created_at      timestamptz NOT NULL,
        amount          bigint NOT NULL CHECK (amount > 0),
        currency        text NOT NULL,
        status          text NOT NULL CHECK (status IN
                            ('pending', 'requires_action', 'succeeded', 'failed', 'canceled')),
        outcome         text NOT NULL DEFAULT 'pending',
        reason          text,
        failure_reason  text,
        psp_reference   text,
        metadata        jsonb NOT NULL DEFAULT '{}',
        balance_transaction text COLLATE "C",
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX refunds_list ON refunds (merchant_id, livemode, id DESC);
    CREATE INDEX refunds_charge ON refunds (merchant_id, charge_id, id DESC);

    CREATE TABLE balance_transactions (
        merchant_id        text COLLATE "C" NOT NULL,
        id                 text COLLATE "C" NOT NULL,
        livemode           boolean NOT NULL,
        created_at         timestamptz NOT NULL,
        amount             bigint NOT NULL,
        fee                bigint NOT NULL,
        net                bigint NOT NULL CHECK (net = amount - fee),
        currency           text NOT NULL,
        type               text NOT NULL,
        reporting_category text NOT NULL,
        source_id          text COLLATE "C" NOT NULL,
        status             text NOT NULL CHECK (status IN ('pending', 'available')),
        available_on       timestamptz NOT NULL,
        fee_details        jsonb NOT NULL DEFAULT '[]',
        description        text,
        PRIMARY KEY (merchant_id, id)
    );
    CREATE INDEX balance_transactions_list ON balance_transactions (merchant_id, livemode, id DESC);
    CREATE INDEX balance_transactions_source ON balance_transactions (merchant_id, source_id);

    CREATE TABLE fee_plans (
        merchant_id   text COLLATE "C" NOT NULL REFERENCES merchants (id),
        -- '*' is the merchant's default for currencies without a line of their own.
        currency      text NOT NULL,
        percent_bps   integer NOT NULL CHECK (percent_bps BETWEEN 0 AND 10000),
        fixed         bigint NOT NULL CHECK (fixed >= 0),
        refund_fees   boolean NOT NULL DEFAULT false,
        PRIMARY KEY (merchant_id, currency)
    );
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE fee_plans, balance_transactions, refunds, charges, payment_intent_transitions,
        payment_intents;
    """)
