"""agent_turns.error: why a turn failed, in words, for the dashboard

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# the same predicate as models.TURN_FAILED (a migration keeps its own copy: the model may change later)
_FAILED = "error IS NOT NULL OR outcome IN ('error', 'timeout')"


def upgrade() -> None:
    op.add_column("agent_turns", sa.Column("error", sa.String(300), nullable=True))
    op.create_index("agent_turns_failures", "agent_turns", ["agent_id", "id"], postgresql_where=sa.text(_FAILED))


def downgrade() -> None:
    op.drop_index("agent_turns_failures", table_name="agent_turns")
    op.drop_column("agent_turns", "error")
