"""Read states: the last message a user acknowledged per channel. Unread and mention counts
are computed from the messages that exist now, so they stay right after edits (mentions
added or removed), deletes and reconnects: there is no counter to drift."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from ..events.types import E
from .access import THREAD_TYPES, channel_access, guild_access, visible_channels
from .context import Platform

COUNT_CAP = 9999  # like every chat client: "9999+" is enough, and it bounds the work

_COUNTS = text(
    """
    SELECT c.id AS channel_id, c.type, c.last_message_id, coalesce(rs.last_message_id, 0) AS read_id,
      (SELECT count(*) FROM (SELECT 1 FROM messages m WHERE m.channel_id = c.id AND m.id > coalesce(rs.last_message_id, 0)
                             AND m.author_id <> :uid LIMIT :cap) x) AS unread,
      (SELECT count(*) FROM (SELECT 1 FROM messages m WHERE m.channel_id = c.id AND m.id > coalesce(rs.last_message_id, 0)
                             AND m.author_id <> :uid
                             AND (c.guild_id IS NULL OR :uid = ANY(m.mentions) OR m.mention_everyone
                                  OR m.mention_roles && CAST(:roles AS bigint[]))
                             LIMIT :cap) y) AS mentions
    FROM channels c LEFT JOIN read_states rs ON rs.channel_id = c.id AND rs.user_id = :uid
    WHERE c.id = ANY(:ids)
    """
)


async def do_ack(platform: Platform, user_id: int, channel_id: int, message_id: int) -> dict[str, Any]:
    """Sets the read marker (also backwards: "mark unread"), emits MESSAGE_ACK to the user."""
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        await tx.conn.execute(text(
            "INSERT INTO read_states (user_id, channel_id, last_message_id) VALUES (:u, :c, :m) "
            "ON CONFLICT (user_id, channel_id) DO UPDATE SET last_message_id = :m, updated_at = now()"),
            {"u": user_id, "c": channel_id, "m": message_id})
        state = (await tx.conn.execute(_COUNTS, {"uid": user_id, "ids": [channel_id], "roles": access.member_roles, "cap": COUNT_CAP})).one()
        payload = {"channel_id": str(channel_id), "message_id": str(message_id), "mention_count": state.mentions,
                   "unread_count": state.unread, "version": 0}
        await tx.emit(E.MESSAGE_ACK, payload, user_ids=[user_id], channel_id=channel_id)
    return {"token": None, **payload}


def _entry(r: Any) -> dict[str, Any]:
    return {"id": str(r.channel_id), "last_message_id": str(r.read_id), "mention_count": r.mentions, "unread_count": r.unread,
            "last_channel_message_id": str(r.last_message_id) if r.last_message_id else None}


async def read_states(platform: Platform, user_id: int) -> list[dict[str, Any]]:
    """Every channel the user can read (guild channels, threads, DMs) with its counts."""
    entries: list[dict[str, Any]] = []
    async with platform.read() as conn:
        guild_ids = (await conn.execute(text("SELECT guild_id FROM members WHERE user_id = :u"), {"u": user_id})).scalars().all()
        for gid in guild_ids:
            access = await guild_access(conn, user_id, gid)
            rows = await visible_channels(conn, access, user_id)
            ids = [r.id for r, _ in rows if r.type in (0, 5, *THREAD_TYPES)]
            if ids:
                result = (await conn.execute(_COUNTS, {"uid": user_id, "ids": ids, "roles": list(access.member.member_roles or []),
                                                       "cap": COUNT_CAP})).all()
                entries += [_entry(r) for r in result]
        dm_ids = (await conn.execute(text("SELECT id FROM channels WHERE :u = ANY(recipients)"), {"u": user_id})).scalars().all()
        if dm_ids:
            result = (await conn.execute(_COUNTS, {"uid": user_id, "ids": list(dm_ids), "roles": [], "cap": COUNT_CAP})).all()
            entries += [_entry(r) for r in result]
    return entries
