"""Fission campaigns: campaigns, variants, participants, helps, teams, gifts, rewards and stock, points ledger

Revision ID: 0010_campaigns
Revises: 0009_wecom_ops
"""

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0010_campaigns"
down_revision = "0009_wecom_ops"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
