"""Guilds (one guild is one society), members, roles and invites."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from ..core.errors import (
    InvalidFormBody, MissingPermissions, TownsquareError, UnknownInvite, UnknownMember, UnknownRole, UnknownUser,
)
from ..core.permissions import ALL, DEFAULT_EVERYONE, P
from ..core.snowflake import new_id
from ..db.models import Channel, Guild, Invite, Member, Role, User
from ..events.types import E
from . import shapes
from .access import GUILD_TEXT, guild_access
from .audit import A, changes
from .context import Platform, Tx


class CannotLeaveOwnGuild(TownsquareError):
    status, code, message = 400, 50055, "The owner cannot leave the guild; transfer or delete it"


async def _roles(conn: Any, guild_id: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(Role).where(Role.guild_id == guild_id).order_by(Role.position, Role.id))).all()
    return [shapes.role(r) for r in rows]


async def guild_object(conn: Any, guild_row: Any) -> dict[str, Any]:
    return shapes.guild(guild_row, roles=await _roles(conn, guild_row.id))


async def do_create_guild(platform: Platform, owner_id: int, *, name: str, description: str | None = None) -> dict[str, Any]:
    gid, general = new_id(), new_id()
    async with platform.transaction() as tx:
        c = tx.conn
        await c.execute(insert(Guild).values(id=gid, name=name, description=description, owner_id=owner_id, system_channel_id=general))
        await c.execute(insert(Role).values(id=gid, guild_id=gid, name="@everyone", permissions=DEFAULT_EVERYONE))
        await c.execute(insert(Member).values(guild_id=gid, user_id=owner_id))
        await c.execute(insert(Channel).values(id=general, guild_id=gid, type=GUILD_TEXT, name="general"))
        row = (await c.execute(select(Guild).where(Guild.id == gid))).one()
        obj = await guild_object(c, row)
        await tx.emit(E.GUILD_CREATE, obj, guild_id=gid)
    return obj


async def get_guild(platform: Platform, user_id: int, guild_id: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        return await guild_object(conn, access.guild)


async def list_my_guilds(platform: Platform, user_id: int) -> list[dict[str, Any]]:
    query = text(
        """
        SELECT g.id, g.name, g.icon, g.owner_id,
               (SELECT r.permissions FROM roles r WHERE r.id = g.id) |
               (SELECT coalesce(bit_or(r.permissions), 0) FROM roles r WHERE r.guild_id = g.id AND r.id = ANY(m.roles)) AS perms
        FROM members m JOIN guilds g ON g.id = m.guild_id WHERE m.user_id = :uid ORDER BY g.id
        """
    )
    async with platform.read() as conn:
        rows = (await conn.execute(query, {"uid": user_id})).all()
    return [
        {"id": str(r.id), "name": r.name, "icon": r.icon, "banner": None, "owner": r.owner_id == user_id,
         "permissions": str(ALL if r.owner_id == user_id or r.perms & P.ADMINISTRATOR else r.perms), "features": []}
        for r in rows
    ]


async def do_modify_guild(platform: Platform, user_id: int, guild_id: int, values: dict[str, Any], reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_GUILD))
        before = {k: getattr(access.guild, k) for k in values}
        if values:
            await tx.conn.execute(update(Guild).where(Guild.id == guild_id).values(**values))
        row = (await tx.conn.execute(select(Guild).where(Guild.id == guild_id))).one()
        obj = await guild_object(tx.conn, row)
        await tx.emit(E.GUILD_UPDATE, obj, guild_id=guild_id)
        await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.GUILD_UPDATE, target_id=guild_id,
                       changes=changes(before, values), reason=reason)
    return obj


async def do_delete_guild(platform: Platform, user_id: int, guild_id: int) -> None:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        if access.guild.owner_id != user_id:
            raise MissingPermissions()
        members = (await tx.conn.execute(select(Member.user_id).where(Member.guild_id == guild_id))).scalars().all()
        keys = (await tx.conn.execute(text(
            "SELECT a.storage_key FROM attachments a JOIN channels c ON c.id = a.channel_id WHERE c.guild_id = :g"), {"g": guild_id})).scalars().all()
        await tx.conn.execute(delete(Guild).where(Guild.id == guild_id))
        # the guild's own events stop being visible with its membership: address its members directly
        await tx.emit(E.GUILD_DELETE, {"id": str(guild_id), "unavailable": False}, user_ids=list(members))
    await platform.delete_objects(keys)


# --- members -------------------------------------------------------------------------------

_MEMBERS = text(
    """
    SELECT m.*, to_jsonb(u) AS user FROM members m JOIN users u ON u.id = m.user_id
    WHERE m.guild_id = :gid AND m.user_id > :after ORDER BY m.user_id LIMIT :limit
    """
)


def member_object(row: Any) -> dict[str, Any]:
    return shapes.member(row, shapes.user_json(row.user))


async def list_members(platform: Platform, user_id: int, guild_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        await guild_access(conn, user_id, guild_id)
        rows = (await conn.execute(_MEMBERS, {"gid": guild_id, "after": after, "limit": limit})).all()
    return [member_object(r) for r in rows]


async def member_row(conn: Any, guild_id: int, user_id: int) -> Any:
    row = (await conn.execute(text(
        "SELECT m.*, to_jsonb(u) AS user FROM members m JOIN users u ON u.id = m.user_id WHERE m.guild_id = :g AND m.user_id = :u"),
        {"g": guild_id, "u": user_id})).first()
    if row is None:
        raise UnknownMember()
    return row


async def get_member(platform: Platform, user_id: int, guild_id: int, target_id: int) -> dict[str, Any]:
    async with platform.read() as conn:
        await guild_access(conn, user_id, guild_id)
        return member_object(await member_row(conn, guild_id, target_id))


async def add_member(tx: Tx, guild_id: int, user_id: int) -> dict[str, Any] | None:
    """Adds a member (no permission check: callers check). Returns None if already a member."""
    inserted = (await tx.conn.execute(text(
        "INSERT INTO members (guild_id, user_id) VALUES (:g, :u) ON CONFLICT DO NOTHING RETURNING user_id"),
        {"g": guild_id, "u": user_id})).first()
    if inserted is None:
        return None
    obj = member_object(await member_row(tx.conn, guild_id, user_id))
    await tx.emit(E.GUILD_MEMBER_ADD, {**obj, "guild_id": str(guild_id)}, guild_id=guild_id)
    return obj


async def do_add_member(platform: Platform, user_id: int, guild_id: int, target_id: int) -> dict[str, Any] | None:
    """PUT /guilds/{id}/members/{user}: a manager brings a user or bot (an agent) in."""
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_GUILD))
        target = (await tx.conn.execute(select(User).where(User.id == target_id))).first()
        if target is None:
            raise UnknownUser()
        obj = await add_member(tx, guild_id, target_id)
        if obj is not None and target.bot:
            await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.BOT_ADD, target_id=target_id)
    return obj


async def _check_role_ids(conn: Any, guild_id: int, role_ids: list[int]) -> None:
    found = set((await conn.execute(select(Role.id).where(Role.guild_id == guild_id, Role.id.in_(role_ids)))).scalars().all())
    missing = [r for r in role_ids if r not in found or r == guild_id]
    if missing:
        raise UnknownRole()


async def _require_above(conn: Any, access: Any, user_id: int, role_ids: list[int]) -> None:
    """Role hierarchy: only roles below the actor's highest role may be given or taken."""
    if access.guild.owner_id == user_id or not role_ids:
        return
    top = (await conn.execute(select(func.max(Role.position)).where(Role.id.in_(role_ids)))).scalar() or 0
    if top >= access.guild.top_role_position:
        raise MissingPermissions()


async def emit_member_update(tx: Tx, guild_id: int, user_id: int) -> dict[str, Any]:
    obj = member_object(await member_row(tx.conn, guild_id, user_id))
    await tx.emit(E.GUILD_MEMBER_UPDATE, {**obj, "guild_id": str(guild_id)}, guild_id=guild_id)
    return obj


async def do_modify_member(platform: Platform, user_id: int, guild_id: int, target_id: int, values: dict[str, Any],
                           reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        before = await member_row(tx.conn, guild_id, target_id)
        update_values: dict[str, Any] = {}
        if "nick" in values:
            needed = P.CHANGE_NICKNAME if target_id == user_id else P.MANAGE_NICKNAMES
            access.require(int(needed))
            update_values["nick"] = values["nick"]
        if "roles" in values:
            access.require(int(P.MANAGE_ROLES))
            roles = sorted(set(values["roles"]))
            await _check_role_ids(tx.conn, guild_id, roles)
            changed = set(roles) ^ set(before.roles)
            await _require_above(tx.conn, access, user_id, list(changed))
            update_values["roles"] = roles
        if update_values:
            await tx.conn.execute(update(Member).where(Member.guild_id == guild_id, Member.user_id == target_id).values(**update_values))
        obj = await emit_member_update(tx, guild_id, target_id)
        if "nick" in update_values:
            await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.MEMBER_UPDATE, target_id=target_id,
                           changes=changes({"nick": before.nick}, {"nick": update_values["nick"]}), reason=reason)
        if "roles" in update_values:
            await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.MEMBER_ROLE_UPDATE, target_id=target_id,
                           changes=await _role_changes(tx.conn, before.roles, update_values["roles"]), reason=reason)
    return obj


async def _role_changes(conn: Any, before: list[int], after: list[int]) -> list[dict[str, Any]]:
    """Discord's shape for role changes: `$add` / `$remove` lists of {id, name}."""
    added, removed = sorted(set(after) - set(before)), sorted(set(before) - set(after))
    names = dict((await conn.execute(select(Role.id, Role.name).where(Role.id.in_(added + removed)))).all()) if added or removed else {}
    out = []
    for key, ids in (("$add", added), ("$remove", removed)):
        if ids:
            out.append({"key": key, "new_value": [{"id": str(r), "name": names.get(r, "")} for r in ids]})
    return out


async def do_set_member_role(platform: Platform, user_id: int, guild_id: int, target_id: int, role_id: int, *, add: bool,
                             reason: str | None) -> None:
    async with platform.read() as conn:
        member = await member_row(conn, guild_id, target_id)
    roles = set(member.roles)
    roles = roles | {role_id} if add else roles - {role_id}
    if add and role_id == guild_id:
        raise UnknownRole()
    await do_modify_member(platform, user_id, guild_id, target_id, {"roles": list(roles)}, reason)


async def remove_member(tx: Tx, guild_id: int, target: Any) -> None:
    """Removes a member row (from `_member`) and its thread memberships; no permission check."""
    await tx.conn.execute(delete(Member).where(Member.guild_id == guild_id, Member.user_id == target.user_id))
    await tx.conn.execute(text(
        "DELETE FROM thread_members tm USING channels c WHERE tm.thread_id = c.id AND c.guild_id = :g AND tm.user_id = :u"),
        {"g": guild_id, "u": target.user_id})
    payload = {"guild_id": str(guild_id), "user": shapes.user_json(target.user)}
    # the removed user no longer sees guild events, so address them too
    await tx.emit(E.GUILD_MEMBER_REMOVE, payload, guild_id=guild_id)
    await tx.emit(E.GUILD_DELETE, {"id": str(guild_id)}, user_ids=[target.user_id])


async def do_leave_guild(platform: Platform, user_id: int, guild_id: int) -> None:
    """`DELETE /users/@me/guilds/{id}`: a member leaves (no permission needed; the owner cannot)."""
    await do_remove_member(platform, user_id, guild_id, user_id, None, leave=True)


async def do_remove_member(platform: Platform, user_id: int, guild_id: int, target_id: int, reason: str | None, *,
                           leave: bool = False) -> None:
    """`DELETE /guilds/{g}/members/{u}` is a kick and needs KICK_MEMBERS, also when the target is
    oneself (as on Discord); only `leave` (from `do_leave_guild`) removes oneself without it."""
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        if target_id == access.guild.owner_id:
            if target_id == user_id and leave:
                raise CannotLeaveOwnGuild()
            raise MissingPermissions()
        if not leave:
            access.require(int(P.KICK_MEMBERS))
        elif target_id != user_id:
            raise MissingPermissions()
        target = await member_row(tx.conn, guild_id, target_id)
        await _require_above(tx.conn, access, user_id, list(target.roles) if target_id != user_id else [])
        await remove_member(tx, guild_id, target)
        if target_id != user_id:
            await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.MEMBER_KICK, target_id=target_id, reason=reason)


# --- roles ---------------------------------------------------------------------------------

ROLE_FIELDS = ("name", "permissions", "color", "hoist", "mentionable", "position")


async def list_roles(platform: Platform, user_id: int, guild_id: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        await guild_access(conn, user_id, guild_id)
        return await _roles(conn, guild_id)


def _check_grant(access: Any, user_id: int, permissions: int | None) -> None:
    """Nobody grants a permission they do not hold themselves."""
    if permissions is None or access.guild.owner_id == user_id or access.permissions == ALL:
        return
    if permissions & ~access.permissions:
        raise MissingPermissions()


async def do_create_role(platform: Platform, user_id: int, guild_id: int, values: dict[str, Any], reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_ROLES))
        _check_grant(access, user_id, values.get("permissions"))
        count = (await tx.conn.execute(select(func.count()).select_from(Role).where(Role.guild_id == guild_id))).scalar_one()
        if count >= 250:
            raise InvalidFormBody("Maximum number of guild roles reached (250)")
        values = {"name": "new role", "permissions": 0, **values}
        values.setdefault("position", 1)
        row = (await tx.conn.execute(insert(Role).values(id=new_id(), guild_id=guild_id, **values).returning(Role))).one()
        obj = shapes.role(row)
        await tx.emit(E.GUILD_ROLE_CREATE, {"guild_id": str(guild_id), "role": obj}, guild_id=guild_id)
        await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.ROLE_CREATE, target_id=row.id,
                       changes=changes(None, {k: values[k] for k in values if k in ROLE_FIELDS}), reason=reason)
    return obj


async def do_modify_role(platform: Platform, user_id: int, guild_id: int, role_id: int, values: dict[str, Any],
                         reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_ROLES))
        before = (await tx.conn.execute(select(Role).where(Role.id == role_id, Role.guild_id == guild_id))).first()
        if before is None:
            raise UnknownRole()
        if role_id != guild_id:
            await _require_above(tx.conn, access, user_id, [role_id])
        if role_id == guild_id and "name" in values:
            values.pop("name")  # @everyone keeps its name
        _check_grant(access, user_id, values.get("permissions"))
        row = (await tx.conn.execute(update(Role).where(Role.id == role_id).values(**values).returning(Role))).one() if values else before
        obj = shapes.role(row)
        await tx.emit(E.GUILD_ROLE_UPDATE, {"guild_id": str(guild_id), "role": obj}, guild_id=guild_id)
        await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.ROLE_UPDATE, target_id=role_id,
                       changes=changes({k: getattr(before, k) for k in values}, values), reason=reason)
    return obj


async def do_delete_role(platform: Platform, user_id: int, guild_id: int, role_id: int, reason: str | None) -> None:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_ROLES))
        if role_id == guild_id:
            raise InvalidFormBody("Cannot delete the @everyone role")
        exists = (await tx.conn.execute(select(Role.id).where(Role.id == role_id, Role.guild_id == guild_id))).first()
        if exists is None:
            raise UnknownRole()
        await _require_above(tx.conn, access, user_id, [role_id])
        await tx.conn.execute(delete(Role).where(Role.id == role_id))
        await tx.conn.execute(text("UPDATE members SET roles = array_remove(roles, :r) WHERE guild_id = :g AND :r = ANY(roles)"),
                              {"r": role_id, "g": guild_id})
        await tx.emit(E.GUILD_ROLE_DELETE, {"guild_id": str(guild_id), "role_id": str(role_id)}, guild_id=guild_id)
        await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.ROLE_DELETE, target_id=role_id, reason=reason)


# --- invites -------------------------------------------------------------------------------

def _invite_object(row: Any, guild: Any, inviter: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": 0, "code": row.code,
        "guild": {"id": str(guild.id), "name": guild.name, "icon": guild.icon, "description": guild.description, "features": []},
        "channel": {"id": str(row.channel_id), "type": 0},
        "inviter": inviter, "uses": row.uses, "max_uses": row.max_uses,
        "max_age": 0 if row.expires_at is None else int((row.expires_at - row.created_at).total_seconds()),
        "temporary": False, "created_at": shapes.iso(row.created_at), "expires_at": shapes.iso(row.expires_at),
    }


async def do_create_invite(platform: Platform, user: Any, channel_access: Any, *, max_age: int, max_uses: int,
                           reason: str | None) -> dict[str, Any]:
    channel_access.require(int(P.CREATE_INSTANT_INVITE))
    guild_id = channel_access.guild_id
    if guild_id is None:
        raise InvalidFormBody("Invites are for guild channels")
    code = secrets.token_urlsafe(6)[:8]
    expires = datetime.now(timezone.utc) + timedelta(seconds=max_age) if max_age else None
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(insert(Invite).values(
            code=code, guild_id=guild_id, channel_id=channel_access.channel.id, inviter_id=user.id, max_uses=max_uses,
            expires_at=expires).returning(Invite))).one()
        guild = (await tx.conn.execute(select(Guild).where(Guild.id == guild_id))).one()
        obj = _invite_object(row, guild, user.as_user())
        await tx.emit(E.INVITE_CREATE, {**obj, "guild_id": str(guild_id), "channel_id": str(row.channel_id)}, guild_id=guild_id,
                      channel_id=row.channel_id)
        await tx.audit(guild_id=guild_id, user_id=user.id, action_type=A.INVITE_CREATE, target_id=None,
                       changes=changes(None, {"code": code, "channel_id": str(row.channel_id), "max_uses": max_uses, "max_age": max_age}),
                       reason=reason)
    return obj


async def _live_invite(conn: Any, code: str) -> tuple[Any, Any]:
    row = (await conn.execute(select(Invite).where(Invite.code == code))).first()
    if row is None or (row.expires_at and row.expires_at <= datetime.now(timezone.utc)) or (row.max_uses and row.uses >= row.max_uses):
        raise UnknownInvite()
    guild = (await conn.execute(select(Guild).where(Guild.id == row.guild_id))).one()
    return row, guild


async def get_invite(platform: Platform, code: str) -> dict[str, Any]:
    async with platform.read() as conn:
        row, guild = await _live_invite(conn, code)
    return _invite_object(row, guild, None)


async def do_accept_invite(platform: Platform, user_id: int, code: str) -> dict[str, Any]:
    async with platform.transaction() as tx:
        row, guild = await _live_invite(tx.conn, code)
        added = await add_member(tx, guild.id, user_id)
        if added is not None:
            await tx.conn.execute(update(Invite).where(Invite.code == code).values(uses=Invite.uses + 1))
    return _invite_object(row, guild, None) | {"new_member": added is not None}
