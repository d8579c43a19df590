"""runs: scenario runs (`townsquare run`) with what ran, on which society, and their answers

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("arm", sa.String(120), server_default=sa.text("'A'"), nullable=False),
        sa.Column("repeat", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("scenario", sa.Text(), nullable=False),
        sa.Column("code_version", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="SET NULL"), nullable=True),
        sa.Column("state", sa.String(16), server_default=sa.text("'running'"), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("results", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("runs_batch", "runs", ["batch_id", "id"])


def downgrade() -> None:
    op.drop_index("runs_batch", table_name="runs")
    op.drop_table("runs")
