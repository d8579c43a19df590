"""News for a society: items posted to a channel by the society's news source, a bot user
("Town Crier" unless the world names another) that is a member of the guild like any bot.

A news item is an ordinary message: members and agents who follow the channel read it (agents
remember it the way they remember any message). An administrator publishes one now
(`POST /api/v10/townsquare/societies/{guild_id}/news`, a scenario's "publish a news item"), and
the agent worker releases the world's scheduled items through the same `do_publish_news`, with a
nonce derived from the item: the messages table's unique (channel, author, nonce) index makes a
release happen once, whichever worker or restart tries it again. Each publication is
audit-logged (NEWS_PUBLISH), with the acting administrator, or no one for a scheduled release.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select, text

from ..core.errors import UnknownChannel, UnknownGuild
from ..db.models import Channel, Society, User
from . import messages
from .agents import require_admin
from .audit import A
from .context import Platform, Tx
from .guilds import add_member
from .users import AuthUser, insert_bot

DEFAULT_SOURCE = "Town Crier"
NONCE_PREFIX = "nw"


def source_username(guild_id: int) -> str:
    """The news source's username: one per society (usernames are unique across the instance)."""
    return f"crier_{guild_id}"


def item_nonce(guild_id: int, item_id: str) -> str:
    """The message nonce of a scheduled item (Discord's 25 characters): the same on every retry."""
    return NONCE_PREFIX + hashlib.sha256(f"{guild_id}:{item_id}".encode()).hexdigest()[:23]


def compose(content: str, title: str | None) -> str:
    """The message: the headline, then the item ("Frost tonight — Cover tender seedlings ...")."""
    content = content.strip()
    return f"{title.strip()} — {content}" if title and title.strip() else content


def _author(row: Any) -> AuthUser:
    return AuthUser(row.id, row.username, row.global_name, row.avatar, True, False, 0)


async def ensure_source(tx: Tx, guild_id: int, name: str | None = None) -> AuthUser:
    """Inside a transaction: the society's news source, created (bot user + membership) the
    first time. Its display name is set once, from the world's `news_source` when there is one."""
    username = source_username(guild_id)
    row = (await tx.conn.execute(select(User).where(text("lower(users.username) = :u")), {"u": username})).first()
    if row is None:
        name = (name or DEFAULT_SOURCE)[:32]
        row, _token = await insert_bot(tx, owner_id=None, username=username, global_name=name, bio=f"{name}: news for the society")
        await add_member(tx, guild_id, row.id)
    return _author(row)


async def source_id(platform: Platform, guild_id: int) -> int | None:
    async with platform.read() as conn:
        return (await conn.execute(select(User.id).where(text("lower(users.username) = :u")), {"u": source_username(guild_id)})).scalar()


async def _check_target(tx: Tx, guild_id: int, channel_id: int) -> None:
    if (await tx.conn.execute(select(Society.guild_id).where(Society.guild_id == guild_id))).first() is None:
        raise UnknownGuild()
    channel_guild = (await tx.conn.execute(select(Channel.guild_id).where(Channel.id == channel_id))).first()
    if channel_guild is None or channel_guild[0] != guild_id:
        raise UnknownChannel()


async def do_publish_news(platform: Platform, me: AuthUser | None, guild_id: int, channel_id: int, content: str,
                          title: str | None = None, *, nonce: str | None = None, item_id: str | None = None,
                          source: str | None = None) -> tuple[dict[str, Any], bool]:
    """Posts a news item as the society's news source; returns (the message, whether it is new).
    `me` is the administrator publishing it, or None for the world's scheduled release (which
    passes the item's nonce: a repeat returns the first message and logs nothing)."""
    if me is not None:
        require_admin(me)
    async with platform.transaction() as tx:
        await _check_target(tx, guild_id, channel_id)
        author = await ensure_source(tx, guild_id, source)
    if nonce is not None:
        async with platform.read() as conn:
            known = (await conn.execute(text("SELECT id FROM messages WHERE channel_id = :c AND author_id = :a AND nonce = :n"),
                                        {"c": channel_id, "a": author.id, "n": nonce})).scalar()
        if known is not None:
            return await messages.get_message(platform, author.id, channel_id, int(known)), False
    sent = await messages.do_send_message(platform, author, channel_id, messages.NewMessage(content=compose(content, title), nonce=nonce))
    async with platform.transaction() as tx:
        options = {"channel_id": str(channel_id), "message_id": sent["id"]}
        if item_id:
            options["item"] = item_id
        await tx.audit(guild_id=guild_id, user_id=me.id if me is not None else None, action_type=A.NEWS_PUBLISH,
                       target_id=int(sent["id"]), changes=[{"key": "title", "new_value": title or ""}], options=options)
    return sent, True


async def released(platform: Platform, guild_id: int, wanted: list[tuple[int, str]]) -> set[str]:
    """Which of these (channel id, nonce) items the society's news source has posted (through the
    unique nonce index, so it costs one index probe per item)."""
    author = await source_id(platform, guild_id)
    if author is None or not wanted:
        return set()
    async with platform.read() as conn:
        rows = (await conn.execute(text(
            "SELECT m.nonce FROM unnest(CAST(:channels AS bigint[]), CAST(:nonces AS text[])) AS w(channel_id, nonce) "
            "JOIN messages m ON m.channel_id = w.channel_id AND m.author_id = :a AND m.nonce = w.nonce"),
            {"channels": [c for c, _ in wanted], "nonces": [n for _, n in wanted], "a": author})).all()
    return {r.nonce for r in rows}


async def list_news(platform: Platform, me: AuthUser, guild_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The society's published news, newest first (for the dashboard's world panel)."""
    require_admin(me)
    author = await source_id(platform, guild_id)
    if author is None:
        return []
    async with platform.read() as conn:
        rows = (await conn.execute(text(
            "SELECT m.id, m.channel_id, m.content, c.name AS channel FROM messages m JOIN channels c ON c.id = m.channel_id "
            "WHERE m.author_id = :a ORDER BY m.id DESC LIMIT :n"), {"a": author, "n": limit})).all()
    return [{"message_id": str(r.id), "channel_id": str(r.channel_id), "channel": r.channel, "content": r.content} for r in rows]
