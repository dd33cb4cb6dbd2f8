"""Scripts library: sends prepared by the sidebar (counted at WeCom's confirmation), uses into group chats

Revision ID: 0016_script_sends
Revises: 0015_audit_log
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_script_sends"
down_revision = "0015_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "script_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=64), nullable=False),
        sa.Column("prepared_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["script_id"], ["scripts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_script_sends_token"),
    )
    with op.batch_alter_table("script_sends") as batch:
        batch.create_index("ix_script_sends_script", ["script_id", "status"], unique=False)
        batch.create_index("ix_script_sends_brand_prepared", ["brand_id", "prepared_at"], unique=False)
    with op.batch_alter_table("script_uses") as batch:
        batch.add_column(sa.Column("chat_id", sa.String(length=128), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("script_uses") as batch:
        batch.drop_column("chat_id")
    with op.batch_alter_table("script_sends") as batch:
        batch.drop_index("ix_script_sends_brand_prepared")
        batch.drop_index("ix_script_sends_script")
    op.drop_table("script_sends")
