"""Engagement: lottery draws, check-in streaks, quizzes, member tiers

Also the rewards (stock, budget, code pools), reward grants and the points accounts + ledger.

Revision ID: 0011_engagement
Revises: 0010_campaigns
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_engagement"
down_revision = "0010_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_tiers",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=False),
        sa.Column("previous", sa.String(length=64), nullable=False),
        sa.Column("points_basis", sa.Integer(), nullable=False),
        sa.Column("spend_basis", sa.Float(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "customer_id"),
    )
    op.create_table(
        "points_accounts",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("earned_total", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "customer_id"),
    )
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("lots", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "key", name="uq_points_ledger_key"),
    )
    op.create_index("ix_points_ledger_customer", "points_ledger", ["brand_id", "customer_id", "id"], unique=False)
    op.create_index(
        "ix_points_ledger_lots", "points_ledger", ["brand_id", "customer_id", "remaining", "expires_at"], unique=False
    )
    op.create_table(
        "engagement_activities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_engagement_activities_brand_id"), "engagement_activities", ["brand_id"], unique=False)
    op.create_table(
        "rewards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("unit_cost", sa.Float(), nullable=False),
        sa.Column("stock_total", sa.Integer(), nullable=True),
        sa.Column("stock_left", sa.Integer(), nullable=True),
        sa.Column("budget", sa.Float(), nullable=True),
        sa.Column("cost_spent", sa.Float(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.Column("return_stock", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_rewards_brand_id"), "rewards", ["brand_id"], unique=False)
    op.create_table(
        "tier_schemes",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("scheme", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("brand_id"),
    )
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("makeup", sa.Boolean(), nullable=False),
        sa.Column("grants", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["engagement_activities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "customer_id", "day", name="uq_checkins_day"),
    )
    op.create_table(
        "lottery_draws",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("prize", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["engagement_activities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "customer_id", "day", "attempt", name="uq_lottery_draws_attempt"),
    )
    op.create_index("ix_lottery_draws_activity", "lottery_draws", ["activity_id", "prize"], unique=False)
    op.create_table(
        "quiz_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["engagement_activities.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("activity_id", "customer_id", "day", name="uq_quiz_attempts_day"),
    )
    op.create_table(
        "reward_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("reward_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["rewards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reward_id", "code", name="uq_reward_codes_code"),
    )
    op.create_index("ix_reward_codes_free", "reward_codes", ["reward_id", "grant_id"], unique=False)
    op.create_table(
        "reward_grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("reward_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("address", sa.JSON(), nullable=True),
        sa.Column("shipping_carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking_no", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("shipped_at", sa.DateTime(), nullable=True),
        sa.Column("clawed_back_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["reward_id"],
            ["rewards.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "idempotency_key", name="uq_reward_grants_key"),
    )
    op.create_index("ix_reward_grants_customer", "reward_grants", ["brand_id", "customer_id"], unique=False)
    op.create_index("ix_reward_grants_reward", "reward_grants", ["reward_id", "status"], unique=False)
    op.create_index("ix_reward_grants_code", "reward_grants", ["brand_id", "code"], unique=False)
    op.create_index("ix_reward_grants_source", "reward_grants", ["brand_id", "source", "source_ref"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reward_grants_source", table_name="reward_grants")
    op.drop_index("ix_reward_grants_reward", table_name="reward_grants")
    op.drop_index("ix_reward_grants_code", table_name="reward_grants")
    op.drop_index("ix_reward_grants_customer", table_name="reward_grants")
    op.drop_table("reward_grants")
    op.drop_index("ix_reward_codes_free", table_name="reward_codes")
    op.drop_table("reward_codes")
    op.drop_table("quiz_attempts")
    op.drop_index("ix_lottery_draws_activity", table_name="lottery_draws")
    op.drop_table("lottery_draws")
    op.drop_table("checkins")
    op.drop_table("tier_schemes")
    op.drop_index(op.f("ix_rewards_brand_id"), table_name="rewards")
    op.drop_table("rewards")
    op.drop_index(op.f("ix_engagement_activities_brand_id"), table_name="engagement_activities")
    op.drop_table("engagement_activities")
    op.drop_index("ix_points_ledger_lots", table_name="points_ledger")
    op.drop_index("ix_points_ledger_customer", table_name="points_ledger")
    op.drop_table("points_ledger")
    op.drop_table("points_accounts")
    op.drop_table("member_tiers")
