"""Guide workspace: follow-ups and sales stages, reminder digests, Moments tasks, the customer pool, KPI targets

Revision ID: 0013_guide_work
Revises: 0011_engagement
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_guide_work"
down_revision = "0011_engagement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_stages",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "customer_id"),
    )
    op.create_table(
        "followup_digests",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "guide_id", "day"),
    )
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("next_at", sa.DateTime(), nullable=True),
        sa.Column("reminder", sa.String(length=8), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_followups_customer", "followups", ["brand_id", "customer_id", "created_at"], unique=False)
    op.create_index(
        "ix_followups_reminders", "followups", ["brand_id", "guide_id", "reminder", "next_at"], unique=False
    )
    op.create_table(
        "guide_targets",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "guide_id", "period", "metric"),
    )
    op.create_table(
        "moment_task_guides",
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", "guide_id"),
    )
    op.create_index(
        "ix_moment_task_guides_guide", "moment_task_guides", ["brand_id", "guide_id", "status"], unique=False
    )
    op.create_table(
        "pool_leads",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("owner_guide_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.Column("worked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("brand_id", "customer_id"),
    )
    op.create_index("ix_pool_leads_owner", "pool_leads", ["brand_id", "owner_guide_id"], unique=False)
    op.create_table(
        "pool_moves",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_guide_id", sa.String(length=64), nullable=True),
        sa.Column("to_guide_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pool_moves_actor", "pool_moves", ["brand_id", "to_guide_id", "action", "at"], unique=False)
    op.create_index("ix_pool_moves_customer", "pool_moves", ["brand_id", "customer_id", "id"], unique=False)
    op.create_table(
        "guide_work_settings",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("claim_limit", sa.Integer(), nullable=False),
        sa.Column("return_days", sa.Integer(), nullable=False),
        sa.Column("moment_windows", sa.JSON(), nullable=False),
        sa.Column("rr_cursor", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("brand_id"),
    )
    op.create_table(
        "moment_tasks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("tag_ids", sa.JSON(), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=True),
        sa.Column("windows", sa.JSON(), nullable=False),
        sa.Column("jobid", sa.String(length=128), nullable=True),
        sa.Column("moment_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("invalid", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_moment_tasks_brand", "moment_tasks", ["brand_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_moment_tasks_brand", table_name="moment_tasks")
    op.drop_table("moment_tasks")
    op.drop_table("guide_work_settings")
    op.drop_index("ix_pool_moves_customer", table_name="pool_moves")
    op.drop_index("ix_pool_moves_actor", table_name="pool_moves")
    op.drop_table("pool_moves")
    op.drop_index("ix_pool_leads_owner", table_name="pool_leads")
    op.drop_table("pool_leads")
    op.drop_index("ix_moment_task_guides_guide", table_name="moment_task_guides")
    op.drop_table("moment_task_guides")
    op.drop_table("guide_targets")
    op.drop_index("ix_followups_reminders", table_name="followups")
    op.drop_index("ix_followups_customer", table_name="followups")
    op.drop_table("followups")
    op.drop_table("followup_digests")
    op.drop_table("customer_stages")
