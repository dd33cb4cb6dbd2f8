"""Scripts library (话术库 / 素材库): folders, items with usage counts, uses

Revision ID: 0014_scripts
Revises: 0013_guide_work
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_scripts"
down_revision = "0013_guide_work"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "script_folders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("brand_id", "parent_id", "name", name="uq_script_folders_name"),
    )
    with op.batch_alter_table("script_folders") as batch:
        batch.create_index("ix_script_folders_brand_id", ["brand_id"], unique=False)
    op.create_table(
        "scripts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.String(length=200), nullable=False),
        sa.Column("file_key", sa.String(length=120), nullable=False),
        sa.Column("media_id", sa.String(length=200), nullable=False),
        sa.Column("media_expires_at", sa.DateTime(), nullable=True),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scripts") as batch:
        batch.create_index("ix_scripts_brand_folder", ["brand_id", "folder_id"], unique=False)
    op.create_table(
        "script_uses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("script_id", sa.Integer(), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["script_id"], ["scripts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("script_uses") as batch:
        batch.create_index("ix_script_uses_script", ["script_id", "used_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("script_uses") as batch:
        batch.drop_index("ix_script_uses_script")
    op.drop_table("script_uses")
    with op.batch_alter_table("scripts") as batch:
        batch.drop_index("ix_scripts_brand_folder")
    op.drop_table("scripts")
    with op.batch_alter_table("script_folders") as batch:
        batch.drop_index("ix_script_folders_brand_id")
    op.drop_table("script_folders")
