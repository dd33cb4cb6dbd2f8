"""Fission campaigns: campaigns (+ versions), participants (the invite tree), helps and the keys that make one
help per person, teams and members, gifts, the rewards a campaign issued, visit counters

Revision ID: 0010_campaigns
Revises: 0009_wecom_ops
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_campaigns"
down_revision = "0009_wecom_ops"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_help_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("help_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "key", name="uq_campaign_help_keys_key"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("budget_cap", sa.Float(), nullable=True),
        sa.Column("budget_spent", sa.Float(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("pilot_at", sa.DateTime(), nullable=True),
        sa.Column("launched_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.create_index("ix_campaigns_brand_id", ["brand_id"], unique=False)

    op.create_table(
        "campaign_gifts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("giver_id", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("reward_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("receiver_id", sa.String(length=32), nullable=True),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("bonus_grant_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token", name="uq_campaign_gifts_token"),
    )
    with op.batch_alter_table("campaign_gifts") as batch_op:
        batch_op.create_index("ix_campaign_gifts_giver", ["campaign_id", "giver_id"], unique=False)

    op.create_table(
        "campaign_helps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("sharer_id", sa.String(length=32), nullable=True),
        sa.Column("helper_key", sa.String(length=300), nullable=False),
        sa.Column("helper_customer_id", sa.String(length=128), nullable=True),
        sa.Column("helper_id_type", sa.String(length=40), nullable=False),
        sa.Column("helper_id_value", sa.String(length=256), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("new_customer", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("carrier_ref", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("counted_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("observed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_helps") as batch_op:
        batch_op.create_index("ix_campaign_helps_device", ["campaign_id", "device_id", "created_at"], unique=False)
        batch_op.create_index("ix_campaign_helps_ip", ["campaign_id", "ip", "created_at"], unique=False)
        batch_op.create_index("ix_campaign_helps_pending", ["campaign_id", "state", "helper_id_value"], unique=False)
        batch_op.create_index("ix_campaign_helps_person", ["brand_id", "helper_key", "created_at"], unique=False)
        batch_op.create_index("ix_campaign_helps_sharer", ["campaign_id", "sharer_id", "state"], unique=False)

    op.create_table(
        "campaign_participants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("person_key", sa.String(length=300), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=True),
        sa.Column("id_type", sa.String(length=40), nullable=False),
        sa.Column("id_value", sa.String(length=256), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("sharer_id", sa.String(length=32), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=40), nullable=False),
        sa.Column("new_customer", sa.Boolean(), nullable=False),
        sa.Column("helps_counted", sa.Integer(), nullable=False),
        sa.Column("helps_pending", sa.Integer(), nullable=False),
        sa.Column("tiers_reached", sa.Integer(), nullable=False),
        sa.Column("pool_choices", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("observed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "person_key", name="uq_campaign_participants_person"),
        sa.UniqueConstraint("token", name="uq_campaign_participants_token"),
    )
    with op.batch_alter_table("campaign_participants") as batch_op:
        batch_op.create_index("ix_campaign_participants_guide", ["campaign_id", "guide_id"], unique=False)
        batch_op.create_index("ix_campaign_participants_sharer", ["campaign_id", "sharer_id"], unique=False)

    op.create_table(
        "campaign_rewards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("reward_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="uq_campaign_rewards_key"),
    )
    with op.batch_alter_table("campaign_rewards") as batch_op:
        batch_op.create_index("ix_campaign_rewards_participant", ["campaign_id", "participant_id"], unique=False)

    op.create_table(
        "campaign_teams",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("leader_id", sa.String(length=32), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("deadline_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_teams") as batch_op:
        batch_op.create_index("ix_campaign_teams_campaign", ["campaign_id", "status"], unique=False)

    op.create_table(
        "campaign_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "version", name="uq_campaign_versions_version"),
    )
    op.create_table(
        "campaign_visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("variant", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("page", sa.String(length=32), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "day", "variant", "channel", "page", name="uq_campaign_visits_bucket"),
    )
    op.create_table(
        "campaign_team_members",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("participant_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("joined_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["campaign_teams.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "participant_id", name="uq_campaign_team_members_member"),
    )
    with op.batch_alter_table("campaign_team_members") as batch_op:
        batch_op.create_index("ix_campaign_team_members_participant", ["campaign_id", "participant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("campaign_team_members")
    op.drop_table("campaign_visits")
    op.drop_table("campaign_versions")
    op.drop_table("campaign_teams")
    op.drop_table("campaign_rewards")
    op.drop_table("campaign_participants")
    op.drop_table("campaign_helps")
    op.drop_table("campaign_gifts")
    op.drop_table("campaigns")
    op.drop_table("campaign_help_keys")
