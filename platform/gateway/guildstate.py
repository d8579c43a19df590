"""An in-memory picture of a guild's permission structure, kept current by the event stream,
so that filtering a dispatch for a session costs a dictionary lookup, not a query.

The state is loaded once when the first local session of a member needs it; from then on every
GUILD_*/CHANNEL_*/THREAD_* event read from the stream updates it in stream order, before the
event itself is filtered for delivery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..actions.access import PRIVATE_THREAD, THREAD_TYPES, parse_overwrites
from ..core.permissions import ALL, P, Overwrite, apply_overwrites, base_permissions, has

VIEW, MANAGE_THREADS = int(P.VIEW_CHANNEL), int(P.MANAGE_THREADS)

# events that leave GUILD_CREATE's shared part (the guild, roles, channels, threads) as it is;
# any other event of the guild has it rebuilt at the next use
_SHARED_PART_UNCHANGED = frozenset({
    "MESSAGE_UPDATE", "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI", "GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE",
    "GUILD_AUDIT_LOG_ENTRY_CREATE", "INVITE_CREATE", "INVITE_DELETE"})


@dataclass
class ChannelInfo:
    type: int
    parent_id: int | None
    overwrites: list[Overwrite]
    members: set[int] = field(default_factory=set)  # private threads only


@dataclass
class GuildState:
    id: int
    owner_id: int
    roles: dict[int, int]  # role id -> permissions (the @everyone role has the guild's id)
    channels: dict[int, ChannelInfo]
    member_roles: dict[int, list[int]]  # every member of the guild -> role ids
    version: int = 0  # bumped by every change of the permission structure
    touched: int = 0  # events of the guild read so far (ready.note_event)
    payload: Any = None  # GUILD_CREATE's shared part (ready.SharedGuild), as of `touched`
    payload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _cache: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    _viewers: dict[int, tuple[int, frozenset[int]]] = field(default_factory=dict)

    def is_member(self, user_id: int) -> bool:
        return user_id in self.member_roles

    def permissions(self, user_id: int, channel_id: int) -> int:
        """The same resolution as actions.access.resolve, memoised until the state changes."""
        key = (user_id, channel_id)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        perms = self._compute(user_id, channel_id)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = (self.version, perms)
        return perms

    def _compute(self, user_id: int, channel_id: int) -> int:
        roles = self.member_roles.get(user_id)
        channel = self.channels.get(channel_id)
        if roles is None or channel is None:
            return 0
        base = base_permissions(user_id=user_id, owner_id=self.owner_id, everyone_permissions=self.roles.get(self.id, 0),
                                role_permissions=[self.roles.get(r, 0) for r in roles])
        if base == ALL:
            return ALL
        source = channel
        if channel.type in THREAD_TYPES and channel.parent_id in self.channels:
            source = self.channels[channel.parent_id]
        perms = apply_overwrites(base, guild_id=self.id, user_id=user_id, role_ids=roles, overwrites=source.overwrites)
        if channel.type == PRIVATE_THREAD and user_id not in channel.members and not has(perms, MANAGE_THREADS):
            return 0
        return perms

    def can_view(self, user_id: int, channel_id: int) -> bool:
        return self.permissions(user_id, channel_id) & VIEW != 0

    def viewers(self, channel_id: int) -> frozenset[int]:
        """Every member who can see the channel, computed once per state version: fanning an
        event out to a thousand sessions is then one set lookup each."""
        hit = self._viewers.get(channel_id)
        if hit is not None and hit[0] == self.version:
            return hit[1]
        users = frozenset(u for u in self.member_roles if self._compute(u, channel_id) & VIEW)
        self._viewers[channel_id] = (self.version, users)
        return users

    def note_event(self, event: str, data: dict[str, Any]) -> None:
        """Counts the guild's events and keeps GUILD_CREATE's shared part (ready.SharedGuild)
        current, in stream order: an event that changes it invalidates it, except a message,
        which only moves its channel's last_message_id (patched in place)."""
        shared = self.payload
        self.touched += 1
        if shared is None or shared.key != self.touched - 1:
            return
        if event in _SHARED_PART_UNCHANGED:
            shared.key = self.touched
        elif event == "MESSAGE_CREATE":
            channel = shared.by_id.get(str(data.get("channel_id")))
            if channel is not None:  # a thread's message also changes its message_count: rebuilt
                last = channel.get("last_message_id")
                if last is None or int(data["id"]) > int(last):
                    channel["last_message_id"] = data["id"]
                shared.key = self.touched

    def apply(self, event: str, data: dict[str, Any]) -> None:
        """Folds one event into the state (events of other kinds change nothing)."""
        if event in ("CHANNEL_CREATE", "CHANNEL_UPDATE", "THREAD_CREATE", "THREAD_UPDATE"):
            cid = int(data["id"])
            old = self.channels.get(cid)
            overwrites = parse_overwrites(data.get("permission_overwrites")) if "permission_overwrites" in data else (old.overwrites if old else [])
            self.channels[cid] = ChannelInfo(int(data["type"]), _int(data.get("parent_id")), overwrites, old.members if old else set())
        elif event in ("CHANNEL_DELETE", "THREAD_DELETE"):
            self.channels.pop(int(data["id"]), None)
        elif event == "THREAD_MEMBERS_UPDATE":
            info = self.channels.get(int(data["id"]))
            if info is not None:
                info.members |= {int(m["user_id"]) for m in data.get("added_members", [])}
                info.members -= {int(u) for u in data.get("removed_member_ids", [])}
        elif event in ("GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE"):
            self.roles[int(data["role"]["id"])] = int(data["role"]["permissions"])
        elif event == "GUILD_ROLE_DELETE":
            role_id = int(data["role_id"])
            self.roles.pop(role_id, None)
            for roles in self.member_roles.values():
                if role_id in roles:
                    roles.remove(role_id)
        elif event in ("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE"):
            self.member_roles[int(data["user"]["id"])] = [int(r) for r in data.get("roles", [])]
        elif event == "GUILD_MEMBER_REMOVE":
            self.member_roles.pop(int(data["user"]["id"]), None)
        elif event == "GUILD_UPDATE":
            self.owner_id = int(data["owner_id"])
        else:
            return
        self.version += 1


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


async def load_guild_state(conn: AsyncConnection, guild_id: int) -> GuildState | None:
    guild = (await conn.execute(text("SELECT id, owner_id FROM guilds WHERE id = :g"), {"g": guild_id})).first()
    if guild is None:
        return None
    roles = {r.id: r.permissions for r in (await conn.execute(text("SELECT id, permissions FROM roles WHERE guild_id = :g"), {"g": guild_id})).all()}
    channels: dict[int, ChannelInfo] = {}
    for c in (await conn.execute(text("SELECT id, type, parent_id, permission_overwrites FROM channels WHERE guild_id = :g"), {"g": guild_id})).all():
        channels[c.id] = ChannelInfo(c.type, c.parent_id, parse_overwrites(c.permission_overwrites))
    for t in (await conn.execute(text(
            "SELECT tm.thread_id, tm.user_id FROM thread_members tm JOIN channels c ON c.id = tm.thread_id "
            "WHERE c.guild_id = :g AND c.type = 12"), {"g": guild_id})).all():
        channels[t.thread_id].members.add(t.user_id)
    members = {m.user_id: list(m.roles) for m in (await conn.execute(text("SELECT user_id, roles FROM members WHERE guild_id = :g"), {"g": guild_id})).all()}
    return GuildState(guild.id, guild.owner_id, roles, channels, members)
