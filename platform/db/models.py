"""The schema (SQLAlchemy 2.0 declarative). Ids are snowflakes (BIGINT), except the event log,
whose `id` is a write-order sequence and whose `position` is the publish order (see events/)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import UserDefinedType


class XID8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id; orders the event log safely (see events/publisher.py)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


ischema_names["xid8"] = XID8  # so that reflection (alembic's comparison) knows the type


class Base(DeclarativeBase):
    pass


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(32), nullable=False)
    global_name: Mapped[str | None] = mapped_column(String(32))
    avatar: Mapped[str | None] = mapped_column(String(64))
    bot: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(Text)
    bio: Mapped[str | None] = mapped_column(String(190))
    owner_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="SET NULL"))  # a bot's creator
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("users_username_key", func.lower(username), unique=True),)


class Token(Base):
    """Only the SHA-256 of a token is stored; the token itself is shown once."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    token_hash: Mapped[bytes] = mapped_column(nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # "bot" | "bearer"
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Guild(Base):
    __tablename__ = "guilds"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str | None] = mapped_column(String(300))
    icon: Mapped[str | None] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), nullable=False)
    system_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class Role(Base):
    """The @everyone role has the guild's id (Discord's convention)."""

    __tablename__ = "roles"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    color: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    hoist: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    permissions: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    mentionable: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    managed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class Member(Base):
    __tablename__ = "members"
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    nick: Mapped[str | None] = mapped_column(String(32))
    roles: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    joined_at: Mapped[datetime] = _now()


class Channel(Base):
    __tablename__ = "channels"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    guild_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(1024))
    position: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    parent_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # category, or a thread's channel
    owner_id: Mapped[int | None] = mapped_column(BigInteger)  # thread creator / group DM owner
    nsfw: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    rate_limit_per_user: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    permission_overwrites: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    recipients: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))  # DM / group DM
    thread_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_pin_timestamp: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("channels_recipients_gin", recipients, postgresql_using="gin"),)


class ThreadMember(Base):
    __tablename__ = "thread_members"
    thread_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    joined_at: Mapped[datetime] = _now()


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"), nullable=False)
    type: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=text("0"))
    content: Mapped[str] = mapped_column(Text, nullable=False, server_default=text("''"))
    nonce: Mapped[str | None] = mapped_column(String(64))
    tts: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pinned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    mention_everyone: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    mentions: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    mention_roles: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    mention_channels: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # message_reference as sent
    referenced_message_id: Mapped[int | None] = mapped_column(BigInteger)
    thread_id: Mapped[int | None] = mapped_column(BigInteger)  # thread started from this message
    embeds: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    has_attachments: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    flags: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, Computed("to_tsvector('simple', content)", persisted=True))
    __table_args__ = (
        Index("messages_channel_id_id", "channel_id", "id"),
        Index("messages_author", "author_id", "id"),
        Index("messages_nonce", "channel_id", "author_id", "nonce", unique=True, postgresql_where=text("nonce IS NOT NULL")),
        Index("messages_search", "search_vector", postgresql_using="gin"),
        Index("messages_mentions", "mentions", postgresql_using="gin"),
        Index("messages_guild_id", "guild_id", "id"),
    )


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True)
    channel_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(String(1024))
    content_type: Mapped[str] = mapped_column(String(128), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    storage_key: Mapped[str] = mapped_column(String(255), nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = _now()


class Reaction(Base):
    __tablename__ = "reactions"
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = _now()


class ReadState(Base):
    __tablename__ = "read_states"
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    last_message_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    updated_at: Mapped[datetime] = _now()


class Invite(Base):
    __tablename__ = "invites"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False)
    inviter_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    max_uses: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    uses: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    action_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(String(512))


class Event(Base):
    """The event log (outbox). Written in the same transaction as the change it describes;
    `position` is assigned by the publisher in commit-safe order (see events/publisher.py)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    position: Mapped[int | None] = mapped_column(BigInteger)
    xid: Mapped[int] = mapped_column(XID8, nullable=False, server_default=text("pg_current_xact_id()"))
    type: Mapped[str] = mapped_column(String(48), nullable=False)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    user_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))  # private audience (DMs, own read state)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (
        Index("events_position", "position", unique=True, postgresql_where=text("position IS NOT NULL")),
        Index("events_unpublished", "xid", "id", postgresql_where=text("position IS NULL")),
    )


# --- the society: agents and their brains (Townsquare extensions, /api/v10/townsquare) ---


class Society(Base):
    """A guild run as an agent society: which society file seeded it, and the master switch."""

    __tablename__ = "societies"
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    paused: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    revival_topics: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Agent(Base):
    """An agent is a bot user (same id) with a persona. Its token is kept encrypted (Fernet,
    the instance's secret key) because workers must act as it through the public API."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False, index=True)
    persona: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, server_default=text("'active'"))  # active|paused|muted
    state_reason: Mapped[str | None] = mapped_column(String(300))
    mood: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))
    mood_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resting_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # brain unavailable: silent
    token_secret: Mapped[bytes] = mapped_column(nullable=False)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class LlmCall(Base):
    """One call to a model backend, whatever its outcome (every call is recorded)."""

    __tablename__ = "llm_calls"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    agent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("agents.id", ondelete="SET NULL"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    task: Mapped[str] = mapped_column(String(32), nullable=False)
    backend: Mapped[str] = mapped_column(String(64), nullable=False)
    model: Mapped[str] = mapped_column(String(100), nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    completion_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(24), nullable=False)
    fallback_step: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default=text("0"))
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("llm_calls_agent", "agent_id", "id"),)


# A failed turn: one that says why, or one of the outcomes that are failures whatever they say.
TURN_FAILED = "error IS NOT NULL OR outcome IN ('error', 'timeout')"


class AgentTurn(Base):
    """One decision to act and how it ended: the society's heartbeat, for the API and benchmarks."""

    __tablename__ = "agent_turns"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    agent_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("agents.id", ondelete="SET NULL"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)  # mention|reply|dm|roll|revive|manual
    event_position: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(24), nullable=False)  # posted|silent|duplicate|resting|timeout|error
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    llm_ms: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    total_ms: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    # why the turn failed, in words for an administrator ("the model did not answer in 30 s"); None when it did not
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("agent_turns_agent", "agent_id", "id"), Index("agent_turns_guild", "guild_id", "id"),
                      # each agent's last failure (the dashboard) without walking its successful turns
                      Index("agent_turns_failures", "agent_id", "id", postgresql_where=text(TURN_FAILED)))


class Relationship(Base):
    """How `source` gets on with `target` inside one guild (directed: A may like B more than B
    likes A). affinity -1..1 (dislike..liking), familiarity 0..1 (how well known), trust 0..1;
    `rating` is the source's last explicit peer rating (1..5), the reputation's other half."""

    __tablename__ = "relationships"
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True)
    source_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    target_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    affinity: Mapped[float] = mapped_column(Float, nullable=False, server_default=text("0"))
    familiarity: Mapped[float] = mapped_column(Float, nullable=False, server_default=text("0"))
    trust: Mapped[float] = mapped_column(Float, nullable=False, server_default=text("0.5"))
    interactions: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    rating: Mapped[float | None] = mapped_column(Float)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()
    __table_args__ = (Index("relationships_target", "guild_id", "target_id"),)


class GraphSnapshot(Base):
    """The society's social graph at one moment (nodes with layout and metrics, weighted edges),
    taken on a schedule and on demand: the dashboard's timeline."""

    __tablename__ = "graph_snapshots"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False)
    reason: Mapped[str] = mapped_column(String(16), nullable=False)  # schedule | manual
    graph: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_at: Mapped[datetime] = _now()
    __table_args__ = (Index("graph_snapshots_guild", "guild_id", "id"),)


# --- the agents' memory (agents/memory/ledger.py): the vectors are in Chroma, one per message and
# society; what is per agent is here, as rows (see migrations/versions/0005_shared_memory.py)


class MemoryMessage(Base):
    """A message as the society remembers it, once: its text, who said it where, its importance
    to an onlooker, and its audience (the agents who witnessed it, its author among them)."""

    __tablename__ = "memory_messages"
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    channel_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    channel_name: Mapped[str | None] = mapped_column(String(100))  # None: a DM
    author_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    author_name: Mapped[str] = mapped_column(String(100), nullable=False)
    reply_to: Mapped[int | None] = mapped_column(BigInteger)
    reply_to_name: Mapped[str | None] = mapped_column(String(100))
    mentions: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False, server_default=text("'{}'"))
    content: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)  # Unix seconds, as the memories' times
    importance: Mapped[float] = mapped_column(Float, nullable=False)
    audience_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("memory_messages_audience", "audience_id", "created_at"),)


class MemoryAudience(Base):
    """Who witnessed messages: one row per member of each distinct audience (the followers of a
    channel change rarely, so a channel's messages share one audience), not one per message and
    witness."""

    __tablename__ = "memory_audiences"
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    audience_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class MemoryMark(Base):
    """What one agent holds about one witnessed message that differs from the onlooker's default:
    its importance (being addressed, a rating, usefulness), last access, forgetting."""

    __tablename__ = "memory_marks"
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    importance: Mapped[float | None] = mapped_column(Float)
    last_access: Mapped[float | None] = mapped_column(Float)
    uses: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    rated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    forgotten: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class MemoryFact(Base):
    """A fact an agent heard in a message (subject-predicate-object, its confidence to that
    agent); the fact's vector is shared in the society's collection under `fact_key`."""

    __tablename__ = "memory_facts"
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    fact_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), nullable=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    subject: Mapped[str] = mapped_column(String(100), nullable=False)
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    predicate: Mapped[str] = mapped_column(String(32), nullable=False)
    object: Mapped[str] = mapped_column(String(100), nullable=False)
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    confirmed_at: Mapped[float] = mapped_column(Float, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_access: Mapped[float] = mapped_column(Float, nullable=False)
    importance: Mapped[float] = mapped_column(Float, nullable=False)
    uses: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    rated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    source: Mapped[str] = mapped_column(String(64), nullable=False)
    __table_args__ = (Index("memory_facts_id", "agent_id", "id", unique=True), Index("memory_facts_subject", "agent_id", "subject_id"))


class MemoryOwnCount(Base):
    """The size of an agent's own Chroma collection (reflections, summaries, memories added by
    the API, memories written before 0005) as last seen: counts for many agents in one query."""

    __tablename__ = "memory_own_counts"
    agent_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
