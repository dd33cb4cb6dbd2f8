"""Guide workspace: the pool lead's source reference (import batch, form, campaign) and WeCom's daily
联系客户统计 per guide (get_user_behavior_data)

Revision ID: 0017_guide_behavior
Revises: 0016_script_sends
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_guide_behavior"
down_revision = "0016_script_sends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pool_leads", sa.Column("source_ref", sa.String(length=128), nullable=True))
    op.create_table(
        "guide_behavior_days",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("wecom_userid", sa.String(length=64), nullable=False),
        sa.Column("chat_cnt", sa.Integer(), nullable=False),
        sa.Column("message_cnt", sa.Integer(), nullable=False),
        sa.Column("reply_percentage", sa.Float(), nullable=True),
        sa.Column("avg_reply_time", sa.Float(), nullable=True),
        sa.Column("negative_feedback_cnt", sa.Integer(), nullable=False),
        sa.Column("new_apply_cnt", sa.Integer(), nullable=False),
        sa.Column("new_contact_cnt", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "guide_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("guide_behavior_days")
    with op.batch_alter_table("pool_leads") as b:
        b.drop_column("source_ref")
