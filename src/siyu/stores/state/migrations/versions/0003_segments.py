"""customer segments and their definition versions

Revision ID: 0003_segments
Revises: 0002_webhook_deliveries (the metrics webhook log; segments come after it)
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_segments"
down_revision = "0002_webhook_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.Column("member_count", sa.Integer(), nullable=True),
        sa.Column("refresh_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("segments") as batch:
        batch.create_index("ix_segments_brand_id", ["brand_id"], unique=False)
    op.create_table(
        "segment_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["segments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("segment_id", "version", name="uq_segment_versions_segment_version"),
    )


def downgrade() -> None:
    op.drop_table("segment_versions")
    with op.batch_alter_table("segments") as batch:
        batch.drop_index("ix_segments_brand_id")
    op.drop_table("segments")
