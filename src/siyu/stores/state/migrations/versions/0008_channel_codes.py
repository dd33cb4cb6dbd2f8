"""Channel codes (渠道活码) and the adds they brought (onboarding log)

Revision ID: 0008_channel_codes
Revises: 0007_journeys
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_channel_codes"
down_revision = "0007_journeys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=False),
        sa.Column("guides", sa.JSON(), nullable=False),
        sa.Column("fallback", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("config_id", sa.String(length=64), nullable=False),
        sa.Column("qr_code", sa.String(length=500), nullable=False),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.Column("rotation", sa.String(length=16), nullable=False),
        sa.Column("welcome", sa.JSON(), nullable=False),
        sa.Column("tag_channel", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("group_rules", sa.JSON(), nullable=False),
        sa.Column("join_ways", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "state", name="uq_channel_codes_state"),
    )
    with op.batch_alter_table("channel_codes") as batch:
        batch.create_index("ix_channel_codes_brand_id", ["brand_id"], unique=False)
    op.create_table(
        "channel_code_adds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("code_id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=128), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("welcome", sa.String(length=20), nullable=False),
        sa.Column("welcome_detail", sa.Text(), nullable=False),
        sa.Column("welcome_text", sa.Text(), nullable=False),
        sa.Column("tag", sa.String(length=20), nullable=False),
        sa.Column("invite", sa.String(length=20), nullable=False),
        sa.Column("invite_detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["code_id"], ["channel_codes.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "ref", name="uq_channel_code_adds_ref"),
    )
    with op.batch_alter_table("channel_code_adds") as batch:
        batch.create_index("ix_channel_code_adds_code_day", ["code_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("channel_code_adds") as batch:
        batch.drop_index("ix_channel_code_adds_code_day")
    op.drop_table("channel_code_adds")
    with op.batch_alter_table("channel_codes") as batch:
        batch.drop_index("ix_channel_codes_brand_id")
    op.drop_table("channel_codes")
