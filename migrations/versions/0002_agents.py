"""agents: societies, agents, LLM calls and turns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _now() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "societies",
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("paused_reason", sa.String(300), nullable=True),
        sa.Column("revival_topics", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'"), nullable=False),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("guild_id", sa.BigInteger(), sa.ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
        sa.Column("persona", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", sa.String(16), server_default=sa.text("'active'"), nullable=False),
        sa.Column("state_reason", sa.String(300), nullable=True),
        sa.Column("mood", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("mood_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resting_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("token_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _now(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index(op.f("ix_agents_guild_id"), "agents", ["guild_id"])
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("agent_id", sa.BigInteger(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("fallback_step", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        _now(),
    )
    op.create_index("llm_calls_agent", "llm_calls", ["agent_id", "id"])
    op.create_index(op.f("ix_llm_calls_guild_id"), "llm_calls", ["guild_id"])
    op.create_table(
        "agent_turns",
        sa.Column("id", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("agent_id", sa.BigInteger(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("llm_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("total_ms", sa.Integer(), server_default=sa.text("0"), nullable=False),
        _now(),
    )
    op.create_index("agent_turns_agent", "agent_turns", ["agent_id", "id"])
    op.create_index("agent_turns_guild", "agent_turns", ["guild_id", "id"])


def downgrade() -> None:
    op.drop_index("agent_turns_guild", table_name="agent_turns")
    op.drop_index("agent_turns_agent", table_name="agent_turns")
    op.drop_table("agent_turns")
    op.drop_index(op.f("ix_llm_calls_guild_id"), table_name="llm_calls")
    op.drop_index("llm_calls_agent", table_name="llm_calls")
    op.drop_table("llm_calls")
    op.drop_index(op.f("ix_agents_guild_id"), table_name="agents")
    op.drop_table("agents")
    op.drop_table("societies")
