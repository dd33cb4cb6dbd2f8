"""Journeys: definitions and versions, per-customer entries, step log (idempotency keys), effects, staff tasks,
suppressions

Revision ID: 0007_journeys
Revises: 0006_messaging
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_journeys"
down_revision = "0006_messaging"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("brand_id", sa.String(64), sa.ForeignKey("brands.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_journeys_brand_id", "journeys", ["brand_id"])
    op.create_table(
        "journey_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("journey_id", sa.String(64), sa.ForeignKey("journeys.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("journey_id", "version", name="uq_journey_versions_journey_version"),
    )
    op.create_table(
        "journey_entries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("brand_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("dedup_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("wake_at", sa.DateTime(), nullable=True),
        sa.Column("waiting_since", sa.DateTime(), nullable=True),
        sa.Column("arm", sa.String(140), nullable=True),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("exited_at", sa.DateTime(), nullable=True),
        sa.Column("exit_reason", sa.String(32), nullable=True),
        sa.Column("goal_at", sa.DateTime(), nullable=True),
        sa.Column("goal_value", sa.Float(), nullable=True),
        sa.UniqueConstraint("journey_id", "customer_id", "dedup_key", name="uq_journey_entries_dedup"),
    )
    op.create_index("ix_journey_entries_due", "journey_entries", ["status", "wake_at"])
    op.create_index("ix_journey_entries_customer", "journey_entries", ["journey_id", "customer_id"])
    op.create_table(
        "journey_steps",
        sa.Column("entry_id", sa.String(40), primary_key=True),
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("branch", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_journey_steps_journey", "journey_steps", ["journey_id", "node_id"])
    op.create_table(
        "journey_effects",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("brand_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(32), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_journey_effects_status", "journey_effects", ["status"])
    op.create_index("ix_journey_effects_customer", "journey_effects", ["brand_id", "customer_id", "created_at"])
    op.create_table(
        "journey_tasks",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("brand_id", sa.String(64), nullable=False),
        sa.Column("journey_id", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.String(40), nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("guide_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("done_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_journey_tasks_guide", "journey_tasks", ["brand_id", "guide_id", "status"])
    op.create_table(
        "journey_suppressions",
        sa.Column("brand_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("journey_suppressions")
    op.drop_index("ix_journey_tasks_guide", "journey_tasks")
    op.drop_table("journey_tasks")
    op.drop_index("ix_journey_effects_customer", "journey_effects")
    op.drop_index("ix_journey_effects_status", "journey_effects")
    op.drop_table("journey_effects")
    op.drop_index("ix_journey_steps_journey", "journey_steps")
    op.drop_table("journey_steps")
    op.drop_index("ix_journey_entries_customer", "journey_entries")
    op.drop_index("ix_journey_entries_due", "journey_entries")
    op.drop_table("journey_entries")
    op.drop_table("journey_versions")
    op.drop_index("ix_journeys_brand_id", "journeys")
    op.drop_table("journeys")
