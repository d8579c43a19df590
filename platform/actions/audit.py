"""Audit log action types (Discord's numbering, Townsquare's from 200) and the read side of the
log: a guild's audit log (Discord's route) and the instance's security log (administrators)."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..core.errors import MissingPermissions
from ..core.permissions import P
from ..core.snowflake import EPOCH_MS
from . import shapes
from .access import guild_access
from .context import Platform

if TYPE_CHECKING:
    from .users import AuthUser


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
    NEWS_PUBLISH = 208  # a news item posted by the society's news source (an administrator's, or the world's schedule: no user)
    # The security log: entries about accounts and tokens belong to no guild (guild_id NULL), so
    # no guild's audit log shows them; instance administrators read them (and every guild's
    # entries) at /api/v10/townsquare/security-log.
    USER_REGISTER = 220
    LOGIN = 221
    LOGIN_FAILED = 222  # options: the login name tried (never the password) and the address
    LOGOUT = 223
    BOT_CREATE = 224  # a bot user and its first token
    TOKEN_RESET = 225  # every token of a bot revoked, a new one issued
    PASSWORD_RESET = 226  # an operator set a user's password (townsquare init); their sessions were ended
    # the instance's operations, written by platform/ops (its OpsAction, same numbers)
    BACKUP_CREATE = 230
    BACKUP_DOWNLOAD = 231
    BACKUP_RESTORE = 232
    BACKUP_DELETE = 233


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


# One query for the guild audit log and the instance's security log: every filter is optional.
_ENTRIES = text(
    """
    SELECT a.*, to_jsonb(u) AS actor FROM audit_log a LEFT JOIN users u ON u.id = a.user_id
    WHERE (NOT CAST(:platform_only AS boolean) OR a.guild_id IS NULL)
      AND (CAST(:gid AS bigint) IS NULL OR a.guild_id = :gid)
      AND (CAST(:user_id AS bigint) IS NULL OR a.user_id = :user_id)
      AND (CAST(:target AS bigint) IS NULL OR a.target_id = :target)
      AND (CAST(:action AS int) IS NULL OR a.action_type = :action)
      AND (CAST(:before AS bigint) IS NULL OR a.id < :before)
      AND (CAST(:after AS bigint) IS NULL OR a.id > :after)
    ORDER BY CASE WHEN CAST(:after AS bigint) IS NULL THEN -a.id ELSE a.id END
    LIMIT :limit
    """
)


async def _entries(conn: Any, *, platform_only: bool = False, guild_id: int | None, filter_user: int | None,
                   target_id: int | None = None, action_type: int | None, before: int | None, after: int | None,
                   limit: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """The matching rows, newest first (oldest first with `after`), and the users who acted."""
    rows = (await conn.execute(_ENTRIES, {"platform_only": platform_only, "gid": guild_id, "user_id": filter_user,
                                          "target": target_id, "action": action_type, "before": before, "after": after,
                                          "limit": limit})).all()
    users = {str(r.user_id): shapes.user_json(r.actor) for r in rows if r.actor}
    return rows, list(users.values())


async def get_audit_log(platform: Platform, user_id: int, guild_id: int, *, filter_user: int | None, action_type: int | None,
                        before: int | None, after: int | None, limit: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        access.require(int(P.VIEW_AUDIT_LOG))
        rows, users = await _entries(conn, guild_id=guild_id, filter_user=filter_user, action_type=action_type,
                                     before=before, after=after, limit=limit)
    entries = [{
        "id": str(r.id), "guild_id": str(guild_id), "user_id": shapes.sid(r.user_id), "action_type": r.action_type,
        "target_id": shapes.sid(r.target_id), "changes": r.changes or [], "options": r.options, "reason": r.reason,
    } for r in rows]
    return {"audit_log_entries": entries, "users": users, "threads": [], "integrations": [], "webhooks": [],
            "application_commands": [], "auto_moderation_rules": [], "guild_scheduled_events": []}


def _created_at(entry_id: int) -> str:
    return datetime.fromtimestamp(((entry_id >> 22) + EPOCH_MS) / 1000, timezone.utc).isoformat()


async def get_security_log(platform: Platform, me: AuthUser, *, platform_only: bool, guild_id: int | None, filter_user: int | None,
                           target_id: int | None, action_type: int | None, before: int | None, after: int | None,
                           limit: int) -> dict[str, Any]:
    """The instance's audit trail for its administrators: logins, tokens and accounts (no guild),
    and every guild's entries (administration, overrides), newest first."""
    if not me.is_admin:
        raise MissingPermissions()
    async with platform.read() as conn:
        rows, users = await _entries(conn, platform_only=platform_only, guild_id=guild_id, filter_user=filter_user,
                                     target_id=target_id, action_type=action_type, before=before, after=after, limit=limit)
    entries = [{
        "id": str(r.id), "guild_id": shapes.sid(r.guild_id), "user_id": shapes.sid(r.user_id), "action_type": r.action_type,
        "action": A(r.action_type).name if r.action_type in A._value2member_map_ else None,
        "target_id": shapes.sid(r.target_id), "changes": r.changes or [], "options": r.options, "reason": r.reason,
        "created_at": _created_at(r.id),
    } for r in rows]
    return {"entries": entries, "users": users}
