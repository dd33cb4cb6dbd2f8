"""Messaging: the outbox (SMS, email, webhooks; dead letters) and per-brand provider settings

Revision ID: 0006_messaging
Revises: 0005_clv_fits
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_messaging"
down_revision = "0005_clv_fits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "messaging_outbox",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=2000), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("template", sa.String(length=200), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("vendor_id", sa.String(length=200), nullable=True),
        sa.Column("cap_key", sa.String(length=2000), nullable=True),
        sa.Column("cap_day", sa.String(length=10), nullable=True),
        sa.Column("cap_slot", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "idempotency_key", name="uq_messaging_outbox_idempotency"),
        sa.UniqueConstraint("brand_id", "cap_key", "cap_day", "cap_slot", name="uq_messaging_outbox_cap"),
    )
    with op.batch_alter_table("messaging_outbox") as batch:
        batch.create_index("ix_messaging_outbox_status", ["status", "next_attempt_at"], unique=False)
        batch.create_index("ix_messaging_outbox_brand", ["brand_id", "created_at"], unique=False)
    op.create_table(
        "messaging_providers",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("brand_id", "channel"),
    )


def downgrade() -> None:
    op.drop_table("messaging_providers")
    with op.batch_alter_table("messaging_outbox") as batch:
        batch.drop_index("ix_messaging_outbox_brand")
        batch.drop_index("ix_messaging_outbox_status")
    op.drop_table("messaging_outbox")
