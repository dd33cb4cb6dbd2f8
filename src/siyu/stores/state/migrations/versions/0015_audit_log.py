"""Audit log of sensitive actions

Revision ID: 0015_audit_log
Revises: 0014_scripts
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_audit_log"
down_revision = "0014_scripts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.create_index("ix_audit_log_brand_at", ["brand_id", "at"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
