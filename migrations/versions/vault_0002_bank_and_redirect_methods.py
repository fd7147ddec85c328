"""Vault: payment methods other than cards — bank accounts (``us_bank_account``,
``sepa_debit``: the account number or IBAN sealed like a card number) and redirect methods
(``paypal``, ``klarna``: nothing secret).

Revision ID: vault_0002
Revises: vault_0001
"""

from alembic import op

revision = "vault_0002"
down_revision = "vault_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE payment_methods DROP CONSTRAINT payment_methods_type_check;
    ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_type_check
        CHECK (type IN ('card', 'us_bank_account', 'sepa_debit', 'paypal', 'klarna'));
    ALTER TABLE payment_methods
        ALTER COLUMN brand DROP NOT NULL,
        ALTER COLUMN last4 DROP NOT NULL,
        ALTER COLUMN exp_month DROP NOT NULL,
        ALTER COLUMN exp_year DROP NOT NULL,
        ALTER COLUMN fingerprint DROP NOT NULL,
        ALTER COLUMN funding DROP NOT NULL,
        ALTER COLUMN pan DROP NOT NULL,
        ALTER COLUMN pan_key DROP NOT NULL;
    -- What may be shown of a non-card method (routing number, bank code, last four…): never
    -- the account number or IBAN, which live sealed in pan/pan_key like a card number.
    ALTER TABLE payment_methods ADD COLUMN details jsonb;
    ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_card_complete CHECK (
        type <> 'card' OR (brand IS NOT NULL AND last4 IS NOT NULL AND exp_month IS NOT NULL
                           AND exp_year IS NOT NULL AND fingerprint IS NOT NULL
                           AND funding IS NOT NULL AND pan IS NOT NULL AND pan_key IS NOT NULL));
    ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_bank_sealed CHECK (
        type NOT IN ('us_bank_account', 'sepa_debit')
        OR (pan IS NOT NULL AND pan_key IS NOT NULL AND fingerprint IS NOT NULL
            AND details IS NOT NULL));
    ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_sealed_pair
        CHECK ((pan IS NULL) = (pan_key IS NULL));
    """)


def downgrade() -> None:
    op.execute("""
    DELETE FROM payment_methods WHERE type <> 'card';
    ALTER TABLE payment_methods DROP CONSTRAINT payment_methods_sealed_pair;
    ALTER TABLE payment_methods DROP CONSTRAINT payment_methods_bank_sealed;
    ALTER TABLE payment_methods DROP CONSTRAINT payment_methods_card_complete;
    ALTER TABLE payment_methods DROP COLUMN details;
    ALTER TABLE payment_methods
        ALTER COLUMN brand SET NOT NULL,
        ALTER COLUMN last4 SET NOT NULL,
        ALTER COLUMN exp_month SET NOT NULL,
        ALTER COLUMN exp_year SET NOT NULL,
        ALTER COLUMN fingerprint SET NOT NULL,
        ALTER COLUMN funding SET NOT NULL,
        ALTER COLUMN pan SET NOT NULL,
        ALTER COLUMN pan_key SET NOT NULL;
    ALTER TABLE payment_methods DROP CONSTRAINT payment_methods_type_check;
    ALTER TABLE payment_methods ADD CONSTRAINT payment_methods_type_check
        CHECK (type = 'card');
    """)
