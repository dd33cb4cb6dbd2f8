"""WeCom operations: mass sends (tasks, recipients), inheritance (transfers, customers), segment tag rules (marks)

Revision ID: 0009_wecom_ops
Revises: 0008_channel_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_wecom_ops"
down_revision = "0008_channel_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_mass_sends",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("chat_type", sa.String(length=8), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("cap_per_day", sa.Integer(), nullable=False),
        sa.Column("cap_day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "idempotency_key", name="uq_wecom_mass_sends_key"),
    )
    op.create_index("ix_wecom_mass_sends_brand_id", "wecom_mass_sends", ["brand_id"])
    op.create_table(
        "wecom_mass_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("send_id", sa.String(length=32), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("msgid", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("confirm", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["send_id"], ["wecom_mass_sends.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("send_id", "guide_id", "chunk", name="uq_wecom_mass_tasks_chunk"),
    )
    op.create_index("ix_wecom_mass_tasks_send_id", "wecom_mass_tasks", ["send_id"])
    op.create_table(
        "wecom_mass_recipients",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("send_id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("cap_day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["send_id"], ["wecom_mass_sends.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("send_id", "target", name="uq_wecom_mass_recipients_target"),
    )
    op.create_index("ix_wecom_mass_recipients_cap", "wecom_mass_recipients", ["brand_id", "cap_day", "customer_id"])
    op.create_index("ix_wecom_mass_recipients_task", "wecom_mass_recipients", ["task_id"])
    op.create_table(
        "wecom_transfers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("handover_guide_id", sa.String(length=64), nullable=False),
        sa.Column("handover_userid", sa.String(length=64), nullable=False),
        sa.Column("takeover_guide_id", sa.String(length=64), nullable=False),
        sa.Column("takeover_userid", sa.String(length=64), nullable=False),
        sa.Column("resigned", sa.Boolean(), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_wecom_transfers_brand_id", "wecom_transfers", ["brand_id"])
    op.create_table(
        "wecom_transfer_customers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("errcode", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("takeover_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["transfer_id"], ["wecom_transfers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transfer_id", "external_userid", name="uq_wecom_transfer_customers"),
    )
    op.create_index(
        "ix_wecom_transfer_customers_ext", "wecom_transfer_customers", ["brand_id", "external_userid", "status"]
    )
    op.create_table(
        "wecom_tag_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.String(length=64), nullable=False),
        sa.Column("tag_id", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "segment_id", "tag_id", name="uq_wecom_tag_rules"),
    )
    op.create_index("ix_wecom_tag_rules_brand_id", "wecom_tag_rules", ["brand_id"])
    op.create_table(
        "wecom_tag_marks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("userid", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["wecom_tag_rules.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rule_id", "userid", "external_userid", name="uq_wecom_tag_marks"),
    )
    op.create_index("ix_wecom_tag_marks_rule_id", "wecom_tag_marks", ["rule_id"])


def downgrade() -> None:
    for name in (
        "wecom_tag_marks",
        "wecom_tag_rules",
        "wecom_transfer_customers",
        "wecom_transfers",
        "wecom_mass_recipients",
        "wecom_mass_tasks",
        "wecom_mass_sends",
    ):
        op.drop_table(name)
