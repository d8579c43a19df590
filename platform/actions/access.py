"""Who may do what where. `channel_access` loads, in one query, everything needed to resolve
a user's permissions in a channel (guild owner, roles, overwrites, a thread's parent and
membership, DM recipients) and returns the resolved bitfield with the channel row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..core.errors import MissingAccess, MissingPermissions, UnknownChannel, UnknownGuild
from ..core.permissions import ALL, Overwrite, P, apply_overwrites, base_permissions, has
from ..db.raw import fetch_rows

GUILD_TEXT, DM, GUILD_VOICE, GROUP_DM, GUILD_CATEGORY, GUILD_ANNOUNCEMENT = 0, 1, 2, 3, 4, 5
ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD = 10, 11, 12
THREAD_TYPES = (ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD)
TEXT_TYPES = (GUILD_TEXT, GUILD_ANNOUNCEMENT, DM, GROUP_DM, *THREAD_TYPES)

# What a recipient may do in a DM or group DM.
DM_PERMISSIONS = int(
    P.VIEW_CHANNEL | P.SEND_MESSAGES | P.READ_MESSAGE_HISTORY | P.ADD_REACTIONS | P.ATTACH_FILES | P.EMBED_LINKS
    | P.USE_EXTERNAL_EMOJIS | P.PIN_MESSAGES
)


def parse_overwrites(raw: list[dict[str, Any]] | None) -> list[Overwrite]:
    return [Overwrite(int(o["id"]), int(o["type"]), int(o["allow"]), int(o["deny"])) for o in raw or []]


@dataclass(slots=True)
class ChannelAccess:
    channel: Any
    permissions: int
    owner_id: int | None
    member_roles: list[int]

    @property
    def guild_id(self) -> int | None:
        return self.channel.guild_id

    @property
    def is_thread(self) -> bool:
        return self.channel.type in THREAD_TYPES

    def can(self, needed: int) -> bool:
        return has(self.permissions, needed)

    def require(self, needed: int) -> None:
        if not has(self.permissions, needed):
            raise MissingPermissions()

    @property
    def send_permission(self) -> int:
        return int(P.SEND_MESSAGES_IN_THREADS) if self.is_thread else int(P.SEND_MESSAGES)


_CHANNEL_ACCESS = (  # read on every channel request: by the driver's short way when it can (db/raw.py)
    """
    SELECT c.*, g.owner_id AS guild_owner_id,
           p.permission_overwrites AS parent_overwrites,
           m.roles AS member_roles, (m.user_id IS NOT NULL) AS is_member, m.nick AS member_nick, m.joined_at AS member_joined_at,
           (SELECT r.permissions FROM roles r WHERE r.id = c.guild_id) AS everyone_permissions,
           (SELECT coalesce(bit_or(r.permissions), 0) FROM roles r
             WHERE r.guild_id = c.guild_id AND r.id = ANY(m.roles)) AS role_permissions,
           (c.type = 12 AND EXISTS (SELECT 1 FROM thread_members tm
             WHERE tm.thread_id = c.id AND tm.user_id = :uid)) AS in_private_thread
    FROM channels c
    LEFT JOIN guilds g ON g.id = c.guild_id
    LEFT JOIN channels p ON p.id = c.parent_id AND c.type IN (10, 11, 12)
    LEFT JOIN members m ON m.guild_id = c.guild_id AND m.user_id = :uid
    WHERE c.id = :cid
    """
)


def resolve(row: Any, user_id: int) -> int:
    """The user's permissions in the channel described by a `_CHANNEL_ACCESS` row."""
    if row.guild_id is None:
        return DM_PERMISSIONS if user_id in (row.recipients or []) else 0
    if not row.is_member:
        return 0
    roles = list(row.member_roles or [])
    base = base_permissions(
        user_id=user_id, owner_id=row.guild_owner_id, everyone_permissions=row.everyone_permissions or 0,
        role_permissions=[row.role_permissions or 0],
    )
    if base == ALL:
        return ALL
    source = row.parent_overwrites if row.type in THREAD_TYPES else row.permission_overwrites
    perms = apply_overwrites(base, guild_id=row.guild_id, user_id=user_id, role_ids=roles, overwrites=parse_overwrites(source))
    if row.type == PRIVATE_THREAD and not row.in_private_thread and not has(perms, P.MANAGE_THREADS):
        return 0
    return perms


async def channel_access(conn: AsyncConnection, user_id: int, channel_id: int) -> ChannelAccess:
    rows = await fetch_rows(conn, _CHANNEL_ACCESS, {"uid": user_id, "cid": channel_id})
    if not rows:
        raise UnknownChannel()
    row = rows[0]
    perms = resolve(row, user_id)
    if not perms & P.VIEW_CHANNEL:
        raise MissingAccess()
    return ChannelAccess(row, perms, row.guild_owner_id, list(row.member_roles or []))


@dataclass(slots=True)
class GuildAccess:
    guild: Any
    permissions: int
    member: Any

    def require(self, needed: int) -> None:
        if not has(self.permissions, needed):
            raise MissingPermissions()

    def can(self, needed: int) -> bool:
        return has(self.permissions, needed)


_GUILD_ACCESS = text(
    """
    SELECT g.*, m.roles AS member_roles, m.nick, m.joined_at, (m.user_id IS NOT NULL) AS is_member,
           (SELECT r.permissions FROM roles r WHERE r.id = g.id) AS everyone_permissions,
           (SELECT coalesce(bit_or(r.permissions), 0) FROM roles r
             WHERE r.guild_id = g.id AND r.id = ANY(m.roles)) AS role_permissions,
           (SELECT coalesce(max(r.position), 0) FROM roles r
             WHERE r.guild_id = g.id AND r.id = ANY(m.roles)) AS top_role_position
    FROM guilds g LEFT JOIN members m ON m.guild_id = g.id AND m.user_id = :uid
    WHERE g.id = :gid
    """
)


async def guild_access(conn: AsyncConnection, user_id: int, guild_id: int) -> GuildAccess:
    """A member's guild-level permissions; a non-member gets Unknown Guild (no leak)."""
    row = (await conn.execute(_GUILD_ACCESS, {"uid": user_id, "gid": guild_id})).first()
    if row is None or not row.is_member:
        raise UnknownGuild()
    perms = base_permissions(
        user_id=user_id, owner_id=row.owner_id, everyone_permissions=row.everyone_permissions or 0,
        role_permissions=[row.role_permissions or 0],
    )
    return GuildAccess(row, perms, row)


_GUILD_CHANNELS = text(
    """
    SELECT c.*, p.permission_overwrites AS parent_overwrites,
           (c.type = 12 AND EXISTS (SELECT 1 FROM thread_members tm
             WHERE tm.thread_id = c.id AND tm.user_id = :uid)) AS in_private_thread
    FROM channels c LEFT JOIN channels p ON p.id = c.parent_id AND c.type IN (10, 11, 12)
    WHERE c.guild_id = :gid
    ORDER BY c.position, c.id
    """
)


async def visible_channels(conn: AsyncConnection, access: GuildAccess, user_id: int, *, needed: int = int(P.VIEW_CHANNEL)) -> list[tuple[Any, int]]:
    """Every channel of the guild the user can see (with `needed`), with its permissions."""
    g = access.guild
    rows = (await conn.execute(_GUILD_CHANNELS, {"uid": user_id, "gid": g.id})).all()
    out = []
    for row in rows:
        ctx = _GuildChannelRow(row, g)
        perms = resolve(ctx, user_id)
        if has(perms, needed):
            out.append((row, perms))
    return out


class _GuildChannelRow:
    """Adapts a channel row plus its guild's access row to what `resolve` reads."""

    __slots__ = ("_row", "_g")

    def __init__(self, row: Any, g: Any) -> None:
        self._row, self._g = row, g

    def __getattr__(self, name: str) -> Any:
        if name == "guild_owner_id":
            return self._g.owner_id
        if name in ("member_roles", "is_member", "everyone_permissions", "role_permissions"):
            return getattr(self._g, name)
        return getattr(self._row, name)
