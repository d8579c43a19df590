"""relationships between members and snapshots of the social graph

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relationships",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("source_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("target_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("affinity", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("familiarity", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("trust", sa.Float(), server_default=sa.text("0.5"), nullable=False),
        sa.Column("interactions", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("relationships_target", "relationships", ["guild_id", "target_id"])
    op.create_table(
        "graph_snapshots",
        sa.Column("id", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("graph", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("graph_snapshots_guild", "graph_snapshots", ["guild_id", "id"])


def downgrade() -> None:
    op.drop_index("graph_snapshots_guild", table_name="graph_snapshots")
    op.drop_table("graph_snapshots")
    op.drop_index("relationships_target", table_name="relationships")
    op.drop_table("relationships")
