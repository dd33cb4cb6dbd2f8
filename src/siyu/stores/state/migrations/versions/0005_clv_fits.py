"""CLV fits (model estimates, standard errors, status) per brand

Revision ID: 0005_clv_fits
Revises: 0004_wecom
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_clv_fits"
down_revision = "0004_wecom"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clv_fits",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=32), nullable=False),
        sa.Column("calibration_end", sa.Date(), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("discount_rate", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.String(length=200), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("se", sa.JSON(), nullable=False),
        sa.Column("log_likelihood", sa.Float(), nullable=True),
        sa.Column("spend_params", sa.JSON(), nullable=False),
        sa.Column("spend_se", sa.JSON(), nullable=False),
        sa.Column("spend_log_likelihood", sa.Float(), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=True),
        sa.Column("repeat_customers", sa.Integer(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("clv_fits") as batch:
        batch.create_index("ix_clv_fits_brand_id", ["brand_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clv_fits") as batch:
        batch.drop_index("ix_clv_fits_brand_id")
    op.drop_table("clv_fits")
