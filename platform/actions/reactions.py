"""Reactions with unicode emoji: add, remove (own or, with MANAGE_MESSAGES, anyone's), list."""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import text

from ..core.errors import TownsquareError, UnknownEmoji, UnknownMessage
from ..core.permissions import P
from ..events.types import E
from . import shapes
from .access import channel_access
from .context import Platform
from .messages import _audience

_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}
_KEYCAP_BASES = set("0123456789#*")


class MaxReactions(TownsquareError):
    status, code, message = 400, 30010, "Maximum number of reactions reached (20)"


def check_emoji(raw: str) -> str:
    """A single unicode emoji sequence (ZWJ sequences, flags, keycaps and skin tones allowed).
    Custom emoji (`name:id`) do not exist in Townsquare: Unknown Emoji."""
    if not raw or len(raw) > 32:
        raise UnknownEmoji()
    for i, ch in enumerate(raw):
        if ch in _JOINERS or 0xE0020 <= ord(ch) <= 0xE007F:
            continue
        if ch in _KEYCAP_BASES and "\u20e3" in raw[i + 1:i + 3]:
            continue
        if unicodedata.category(ch) not in ("So", "Sk") or ch in "^`´¨":
            raise UnknownEmoji()
    return unicodedata.normalize("NFC", raw)


async def _message_access(tx_or_conn: Any, user_id: int, channel_id: int, message_id: int) -> Any:
    access = await channel_access(tx_or_conn, user_id, channel_id)
    access.require(int(P.READ_MESSAGE_HISTORY))
    exists = (await tx_or_conn.execute(text("SELECT 1 FROM messages WHERE id = :m AND channel_id = :c"),
                                       {"m": message_id, "c": channel_id})).first()
    if exists is None:
        raise UnknownMessage()
    return access


def _payload(access: Any, user_id: int, channel_id: int, message_id: int, emoji: str) -> dict[str, Any]:
    out = {"user_id": str(user_id), "channel_id": str(channel_id), "message_id": str(message_id),
           "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0}
    if access.guild_id is not None:
        out["guild_id"] = str(access.guild_id)
    return out


_MEMBER = text(
    "SELECT m.guild_id, m.nick, m.roles, m.joined_at, jsonb_build_object('id', u.id, 'username', u.username, "
    "'global_name', u.global_name, 'avatar', u.avatar, 'bot', u.bot) AS user "
    "FROM members m JOIN users u ON u.id = m.user_id WHERE m.guild_id = :g AND m.user_id = :u"
)


async def member_of(conn: Any, guild_id: int, user_id: int) -> dict[str, Any] | None:
    """The guild member object (with its user) that Discord puts in a guild's MESSAGE_REACTION_ADD
    and TYPING_START; None for a user who is not a member."""
    row = (await conn.execute(_MEMBER, {"g": guild_id, "u": user_id})).first()
    return shapes.member(row, shapes.user_json(row.user)) if row is not None else None


async def do_add_reaction(platform: Platform, user: Any, channel_id: int, message_id: int, emoji: str) -> None:
    emoji = check_emoji(emoji)
    async with platform.transaction() as tx:
        access = await _message_access(tx.conn, user.id, channel_id, message_id)
        present = (await tx.conn.execute(text(
            "SELECT count(DISTINCT emoji) AS kinds, bool_or(emoji = :e) AS has_it FROM reactions WHERE message_id = :m"),
            {"m": message_id, "e": emoji})).one()
        if not present.has_it:
            access.require(int(P.ADD_REACTIONS))  # joining an existing reaction needs only history access
            if present.kinds >= 20:
                raise MaxReactions()
        added = (await tx.conn.execute(text(
            "INSERT INTO reactions (message_id, emoji, user_id) VALUES (:m, :e, :u) ON CONFLICT DO NOTHING "
            "RETURNING user_id, (SELECT author_id FROM messages WHERE id = :m) AS author_id"),
            {"m": message_id, "e": emoji, "u": user.id})).first()
        if added is not None:  # Discord's payload names the message's author (agents' moods and bonds use it)
            payload = {**_payload(access, user.id, channel_id, message_id, emoji), "message_author_id": str(added.author_id)}
            if access.guild_id is not None:  # in a guild, the reacting member (libraries build their event from it)
                member = await member_of(tx.conn, access.guild_id, user.id)
                if member is not None:
                    payload["member"] = member
            await tx.emit(E.MESSAGE_REACTION_ADD, payload, **_audience(access))


async def do_remove_reaction(platform: Platform, user_id: int, channel_id: int, message_id: int, emoji: str,
                             target_id: int | None = None) -> None:
    emoji = check_emoji(emoji)
    async with platform.transaction() as tx:
        access = await _message_access(tx.conn, user_id, channel_id, message_id)
        target = user_id if target_id is None else target_id
        if target != user_id:
            access.require(int(P.MANAGE_MESSAGES))
        removed = (await tx.conn.execute(text(
            "DELETE FROM reactions WHERE message_id = :m AND emoji = :e AND user_id = :u RETURNING user_id"),
            {"m": message_id, "e": emoji, "u": target})).first()
        if removed is not None:
            await tx.emit(E.MESSAGE_REACTION_REMOVE, _payload(access, target, channel_id, message_id, emoji), **_audience(access))


async def do_clear_reactions(platform: Platform, user_id: int, channel_id: int, message_id: int, emoji: str | None) -> None:
    async with platform.transaction() as tx:
        access = await _message_access(tx.conn, user_id, channel_id, message_id)
        access.require(int(P.MANAGE_MESSAGES))
        base = {"channel_id": str(channel_id), "message_id": str(message_id)}
        if access.guild_id is not None:
            base["guild_id"] = str(access.guild_id)
        if emoji is None:
            await tx.conn.execute(text("DELETE FROM reactions WHERE message_id = :m"), {"m": message_id})
            await tx.emit(E.MESSAGE_REACTION_REMOVE_ALL, base, **_audience(access))
        else:
            emoji = check_emoji(emoji)
            await tx.conn.execute(text("DELETE FROM reactions WHERE message_id = :m AND emoji = :e"), {"m": message_id, "e": emoji})
            await tx.emit(E.MESSAGE_REACTION_REMOVE_EMOJI, {**base, "emoji": {"id": None, "name": emoji}}, **_audience(access))


async def list_reactors(platform: Platform, user_id: int, channel_id: int, message_id: int, emoji: str, *, after: int,
                        limit: int) -> list[dict[str, Any]]:
    emoji = check_emoji(emoji)
    async with platform.read() as conn:
        await _message_access(conn, user_id, channel_id, message_id)
        rows = (await conn.execute(text(
            "SELECT u.* FROM reactions r JOIN users u ON u.id = r.user_id WHERE r.message_id = :m AND r.emoji = :e AND u.id > :after "
            "ORDER BY u.id LIMIT :limit"), {"m": message_id, "e": emoji, "after": after, "limit": limit})).all()
    return [shapes.user(r) for r in rows]


