"""memory that costs per message, not per witness: a message's record once per society, and
per agent only what is that agent's (the audiences it belongs to, its marks, the facts it heard)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "memory_messages",
        sa.Column("message_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_name", sa.String(100), nullable=True),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("author_name", sa.String(100), nullable=False),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("reply_to_name", sa.String(100), nullable=True),
        sa.Column("mentions", postgresql.ARRAY(sa.BigInteger()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("audience_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("memory_messages_audience", "memory_messages", ["audience_id", "created_at"])
    op.create_table(
        "memory_audiences",
        sa.Column("agent_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("audience_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    )
    op.create_table(
        "memory_marks",
        sa.Column("agent_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("importance", sa.Float(), nullable=True),
        sa.Column("last_access", sa.Float(), nullable=True),
        sa.Column("uses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("forgotten", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_table(
        "memory_facts",
        sa.Column("agent_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("fact_key", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=True),
        sa.Column("predicate", sa.String(32), nullable=False),
        sa.Column("object", sa.String(100), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("confirmed_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_access", sa.Float(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("uses", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("rated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
    )
    op.create_index("memory_facts_id", "memory_facts", ["agent_id", "id"], unique=True)
    op.create_index("memory_facts_subject", "memory_facts", ["agent_id", "subject_id"])
    op.create_table(
        "memory_own_counts",
        sa.Column("agent_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("memory_own_counts")
    op.drop_index("memory_facts_subject", table_name="memory_facts")
    op.drop_index("memory_facts_id", table_name="memory_facts")
    op.drop_table("memory_facts")
    op.drop_table("memory_marks")
    op.drop_table("memory_audiences")
    op.drop_index("memory_messages_audience", table_name="memory_messages")
    op.drop_table("memory_messages")
