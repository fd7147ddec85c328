"""Split every merchant's ``pending`` ledger account eight ways, like the platform's fee and
PSP clearing accounts.

Every capture writes a merchant's pending account twice (the capture in, the fee out), and
a row lock is held until the payment's transaction commits: one row per merchant let that
merchant's payments commit one at a time (the end-to-end benchmark spent 66 ms of every
payment waiting for it). Existing accounts keep their balance in shard 0 and get seven empty
shards; reads sum the shards, so no balance changes.

Revision ID: payments_0005
Revises: payments_0004
"""

from alembic import op

revision = "payments_0005"
down_revision = "payments_0004"
branch_labels = None
depends_on = "ledger_0002"

SHARDS = 8

UPGRADE = f"""
UPDATE ledger_accounts SET shards = {SHARDS}
WHERE owner = 'merchant' AND purpose = 'pending' AND shards = 1;
INSERT INTO ledger_accounts (
    merchant_id, id, shard, livemode, owner, purpose, currency, shards,
    debits_must_not_exceed_credits, credits_must_not_exceed_debits, closed, created_at,
    metadata)
SELECT a.merchant_id, a.id, s.shard, a.livemode, a.owner, a.purpose, a.currency, a.shards,
       a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits, a.closed,
       a.created_at, a.metadata
FROM ledger_accounts a
CROSS JOIN generate_series(1, {SHARDS} - 1) AS s(shard)
WHERE a.owner = 'merchant' AND a.purpose = 'pending' AND a.shard = 0
  AND a.shards = {SHARDS}
ON CONFLICT DO NOTHING;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # Shards cannot be merged back without rewriting append-only history: the split stays.
    pass
