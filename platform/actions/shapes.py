"""Discord v10 object shapes, built from rows. Ids are strings, times ISO 8601. The same
shapes go out in REST responses and in event payloads."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from ..core.snowflake import snowflake_time


def sid(value: int | None) -> str | None:
    return str(value) if value is not None else None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def user(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "username": row.username,
        "discriminator": "0",
        "global_name": row.global_name,
        "avatar": row.avatar,
        "bot": bool(row.bot),
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def user_json(obj: dict[str, Any]) -> dict[str, Any]:
    """A user from a PostgreSQL json_build_object/row_to_json (ids arrive as numbers)."""
    return {
        "id": str(obj["id"]),
        "username": obj["username"],
        "discriminator": "0",
        "global_name": obj.get("global_name"),
        "avatar": obj.get("avatar"),
        "bot": bool(obj.get("bot")),
        "system": False,
        "public_flags": 0,
    }


def role(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "color": row.color,
        "colors": {"primary_color": row.color, "secondary_color": None, "tertiary_color": None},
        "hoist": row.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": row.position,
        "permissions": str(row.permissions),
        "managed": row.managed,
        "mentionable": row.mentionable,
        "flags": 0,
    }


def member(row: Any, user_obj: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "user": user_obj if user_obj is not None else user_json(row.user) if hasattr(row, "user") else None,
        "nick": row.nick,
        "avatar": None,
        "roles": [str(r) for r in row.roles if r != getattr(row, "guild_id", None)],
        "joined_at": iso(row.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }


def partial_member(roles: list[int], nick: str | None, joined_at: datetime | None, guild_id: int) -> dict[str, Any]:
    """A member without its user, as a guild MESSAGE_CREATE carries the author's."""
    return {"nick": nick, "avatar": None, "roles": [str(r) for r in roles if r != guild_id], "joined_at": iso(joined_at),
            "premium_since": None, "deaf": False, "mute": False, "flags": 0, "pending": False, "communication_disabled_until": None}


def overwrites(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": str(o["id"]), "type": o["type"], "allow": str(o["allow"]), "deny": str(o["deny"])} for o in value]


def channel(row: Any, recipients: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(row.id), "type": row.type, "flags": 0}
    if row.guild_id is not None:
        out["guild_id"] = str(row.guild_id)
    if row.type in (1, 3):
        out["recipients"] = recipients or []
        out["last_message_id"] = sid(row.last_message_id)
        if row.type == 3:
            out["name"] = row.name
            out["owner_id"] = sid(row.owner_id)
            out["icon"] = None
        return out
    out.update(name=row.name, position=row.position, parent_id=sid(row.parent_id), nsfw=row.nsfw)
    if row.type in (10, 11, 12):
        meta = row.thread_metadata or {}
        out.update(
            owner_id=sid(row.owner_id),
            last_message_id=sid(row.last_message_id),
            rate_limit_per_user=row.rate_limit_per_user,
            message_count=row.message_count,
            total_message_sent=row.message_count,
            member_count=meta.get("member_count", 0),
            thread_metadata={
                "archived": meta.get("archived", False),
                "auto_archive_duration": meta.get("auto_archive_duration", 4320),
                "archive_timestamp": meta.get("archive_timestamp") or iso(row.created_at),
                "locked": meta.get("locked", False),
                "invitable": meta.get("invitable", True),
                "create_timestamp": iso(row.created_at),
            },
        )
        return out
    out["permission_overwrites"] = overwrites(row.permission_overwrites)
    if row.type != 4:
        out.update(
            topic=row.topic,
            last_message_id=sid(row.last_message_id),
            rate_limit_per_user=row.rate_limit_per_user,
            last_pin_timestamp=iso(row.last_pin_timestamp),
        )
    return out


def guild(row: Any, *, roles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "icon": row.icon,
        "description": row.description,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "owner_id": str(row.owner_id),
        "application_id": None,  # no guild is created by a bot application (hikari reads the key)
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 1,
        "explicit_content_filter": 0,
        "roles": roles or [],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": sid(row.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def attachment(obj: dict[str, Any], base_url: str) -> dict[str, Any]:
    url = f"{base_url}/api/v10/attachments/{obj['channel_id']}/{obj['id']}/{obj['filename']}"
    return {
        "id": str(obj["id"]),
        "filename": obj["filename"],
        "description": obj.get("description"),
        "content_type": obj["content_type"],
        "size": obj["size"],
        "url": url,
        "proxy_url": url,
        "width": obj.get("width"),
        "height": obj.get("height"),
    }


def message(row: Any, *, author: dict[str, Any], base_url: str, me: int | None = None) -> dict[str, Any]:
    """`row` is a messages row, optionally with json columns `reactions`, `attachments`,
    `mention_users` and `referenced` from the history query."""
    reactions = getattr(row, "reactions", None) or []
    attachments = getattr(row, "attachments", None) or []
    mention_users = getattr(row, "mention_users", None) or []
    out: dict[str, Any] = {
        "id": str(row.id),
        "type": row.type,
        "channel_id": str(row.channel_id),
        "author": author,
        "content": row.content,
        "timestamp": snowflake_time(row.id).isoformat(),
        "edited_timestamp": iso(row.edited_at),
        "tts": row.tts,
        "mention_everyone": row.mention_everyone,
        "mentions": [user_json(u) for u in mention_users],
        "mention_roles": [str(r) for r in row.mention_roles],
        "attachments": [attachment(a, base_url) for a in attachments],
        "embeds": row.embeds,
        "pinned": row.pinned_at is not None,
        "flags": row.flags,
        "components": [],
    }
    if row.guild_id is not None:
        out["guild_id"] = str(row.guild_id)
    if row.mention_channels:
        out["mention_channels"] = [{"id": str(c)} for c in row.mention_channels]
    if row.nonce is not None:
        out["nonce"] = row.nonce
    if reactions:
        out["reactions"] = [
            {
                "emoji": {"id": None, "name": r["emoji"]},
                "count": r["count"],
                "count_details": {"burst": 0, "normal": r["count"]},
                "me": bool(me is not None and me in r["users"]) if "users" in r else bool(r.get("me")),
                "me_burst": False,
                "burst_colors": [],
            }
            for r in reactions
        ]
    if row.reference is not None:
        out["message_reference"] = row.reference
        ref = getattr(row, "referenced", None)
        if ref is not None:
            out["referenced_message"] = referenced(ref, base_url)
        elif row.referenced_message_id is not None:
            out["referenced_message"] = None  # the replied-to message was deleted
    thread = getattr(row, "thread", None) if row.thread_id is not None else None
    if thread is not None:  # also for a message whose thread predates the stored flag
        out["flags"] = row.flags | HAS_THREAD
        out["thread"] = thread_json(thread)
    return out


HAS_THREAD = 1 << 5  # message flag: a thread was started from this message


# The thread a message started, as one json column of a message query (`thread_json` reads it)
THREAD_JSON_SQL = """jsonb_build_object('id', {t}.id, 'type', {t}.type, 'guild_id', {t}.guild_id, 'name', {t}.name,
    'position', {t}.position, 'parent_id', {t}.parent_id, 'owner_id', {t}.owner_id, 'nsfw', {t}.nsfw,
    'rate_limit_per_user', {t}.rate_limit_per_user, 'thread_metadata', {t}.thread_metadata,
    'last_message_id', {t}.last_message_id, 'message_count', {t}.message_count, 'created_at', {t}.created_at)"""


def thread_json(obj: dict[str, Any]) -> dict[str, Any]:
    """A thread channel (Discord's full channel object) from THREAD_JSON_SQL's json."""
    created = obj.get("created_at")
    row = SimpleNamespace(**{**obj, "created_at": datetime.fromisoformat(created) if isinstance(created, str) else created})
    return channel(row)


def referenced(obj: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The replied-to message, one level deep (Discord does not nest further)."""
    out: dict[str, Any] = {
        "id": str(obj["id"]),
        "type": obj["type"],
        "channel_id": str(obj["channel_id"]),
        "author": user_json(obj["author"]),
        "content": obj["content"],
        "timestamp": snowflake_time(int(obj["id"])).isoformat(),
        "edited_timestamp": obj.get("edited_at"),
        "tts": False,
        "mention_everyone": obj["mention_everyone"],
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": obj.get("pinned_at") is not None,
        "flags": obj.get("flags") or 0,
        "components": [],
    }
    if obj.get("thread") is not None:  # a reply to a thread's starter shows the thread, as the starter itself does
        out["flags"] |= HAS_THREAD
        out["thread"] = thread_json(obj["thread"])
    return out
