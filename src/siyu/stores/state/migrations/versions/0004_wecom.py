"""WeCom callbacks (durable, deduplicated) and rejected callbacks

Revision ID: 0004_wecom
Revises: 0003_segments
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_wecom"
down_revision = "0003_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_callbacks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=400), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("change_type", sa.String(length=64), nullable=False),
        sa.Column("create_time", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("external_user_id", sa.String(length=128), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "dedupe_key", name="uq_wecom_callbacks_dedupe"),
    )
    with op.batch_alter_table("wecom_callbacks") as batch:
        batch.create_index("ix_wecom_callbacks_status", ["brand_id", "status", "id"], unique=False)
    op.create_table(
        "wecom_rejections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("wecom_rejections") as batch:
        batch.create_index("ix_wecom_rejections_brand_id", ["brand_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wecom_rejections") as batch:
        batch.drop_index("ix_wecom_rejections_brand_id")
    op.drop_table("wecom_rejections")
    with op.batch_alter_table("wecom_callbacks") as batch:
        batch.drop_index("ix_wecom_callbacks_status")
    op.drop_table("wecom_callbacks")
