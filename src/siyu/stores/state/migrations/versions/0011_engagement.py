"""Engagement: lottery draws, check-in streaks, quizzes, member tiers

Revision ID: 0011_engagement
Revises: 0010_campaigns
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0011_engagement"
down_revision = "0010_campaigns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
