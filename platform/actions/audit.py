"""Audit log action types (Discord's numbering) and the read side of the log."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from sqlalchemy import text

from ..core.permissions import P
from . import shapes
from .access import guild_access
from .context import Platform


class A(IntEnum):
    GUILD_UPDATE = 1
    CHANNEL_CREATE = 10
    CHANNEL_UPDATE = 11
    CHANNEL_DELETE = 12
    CHANNEL_OVERWRITE_CREATE = 13
    CHANNEL_OVERWRITE_UPDATE = 14
    CHANNEL_OVERWRITE_DELETE = 15
    MEMBER_KICK = 20
    MEMBER_UPDATE = 24
    MEMBER_ROLE_UPDATE = 25
    BOT_ADD = 28
    ROLE_CREATE = 30
    ROLE_UPDATE = 31
    ROLE_DELETE = 32
    INVITE_CREATE = 40
    INVITE_DELETE = 42
    MESSAGE_DELETE = 72
    MESSAGE_BULK_DELETE = 73
    MESSAGE_PIN = 74
    MESSAGE_UNPIN = 75
    THREAD_CREATE = 110
    THREAD_UPDATE = 111
    THREAD_DELETE = 112
    # Townsquare extensions: the society's administration (Discord's numbering stops below 200)
    AGENT_CREATE = 200
    AGENT_UPDATE = 201
    AGENT_DELETE = 202
    AGENT_STATE = 203
    AGENT_POST = 204
    SOCIETY_UPDATE = 205
    AGENT_MEMORY_ADD = 206
    AGENT_MEMORY_FORGET = 207


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Discord's `changes` list: one entry per key whose value differs."""
    out = []
    for key, new in after.items():
        old = (before or {}).get(key)
        if old != new:
            entry: dict[str, Any] = {"key": key, "new_value": new}
            if before is not None:
                entry["old_value"] = old
            out.append(entry)
    return out


_ENTRIES = text(
    """
    SELECT a.*, to_jsonb(u) AS actor FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
    WHERE a.guild_id = :gid
      AND (CAST(:user_id AS bigint) IS NULL OR a.user_id = :user_id)
      AND (CAST(:action AS int) IS NULL OR a.action_type = :action)
      AND (CAST(:before AS bigint) IS NULL OR a.id < :before)
      AND (CAST(:after AS bigint) IS NULL OR a.id > :after)
    ORDER BY CASE WHEN CAST(:after AS bigint) IS NULL THEN -a.id ELSE a.id END
    LIMIT :limit
    """
)


async def get_audit_log(platform: Platform, user_id: int, guild_id: int, *, filter_user: int | None, action_type: int | None,
                        before: int | None, after: int | None, limit: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        access.require(int(P.VIEW_AUDIT_LOG))
        rows = (await conn.execute(_ENTRIES, {"gid": guild_id, "user_id": filter_user, "action": action_type,
                                               "before": before, "after": after, "limit": limit})).all()
    users: dict[str, dict[str, Any]] = {}
    entries = []
    for r in rows:
        if r.actor:
            users[str(r.user_id)] = shapes.user_json(r.actor)
        entries.append({
            "id": str(r.id), "guild_id": str(guild_id), "user_id": shapes.sid(r.user_id), "action_type": r.action_type,
            "target_id": shapes.sid(r.target_id), "changes": r.changes or [], "options": r.options, "reason": r.reason,
        })
    return {"audit_log_entries": entries, "users": list(users.values()), "threads": [], "integrations": [], "webhooks": [],
            "application_commands": [], "auto_moderation_rules": [], "guild_scheduled_events": []}
