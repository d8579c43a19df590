"""Channels: guild text channels and categories, DMs and group DMs, threads, overwrites."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from ..core.errors import InvalidFormBody, InvalidRecipients, MissingPermissions, ThreadLocked, UnknownChannel, UnknownMessage, UnknownOverwrite, UnknownUser
from ..core.permissions import P
from ..core.snowflake import new_id
from ..db.models import Channel, Message, ThreadMember, User
from ..events.types import E
from . import shapes
from .access import (
    DM, GROUP_DM, GUILD_ANNOUNCEMENT, GUILD_CATEGORY, GUILD_TEXT, PRIVATE_THREAD, PUBLIC_THREAD, THREAD_TYPES, ChannelAccess,
    channel_access, guild_access, visible_channels,
)
from .audit import A, changes
from .context import Platform, Tx
from .messages import load_messages

GUILD_CHANNEL_TYPES = (GUILD_TEXT, GUILD_CATEGORY, GUILD_ANNOUNCEMENT)


async def _recipients(conn: Any, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = (await conn.execute(select(User).where(User.id.in_(ids)).order_by(User.id))).all()
    return [shapes.user(r) for r in rows]


async def channel_object(conn: Any, row: Any, viewer_id: int | None = None) -> dict[str, Any]:
    if row.type in (DM, GROUP_DM):
        others = [r for r in row.recipients if r != viewer_id] if viewer_id is not None else list(row.recipients)
        return shapes.channel(row, await _recipients(conn, others))
    return shapes.channel(row)


def _emit_kind(row: Any, base: str) -> E:
    return E(f"THREAD_{base}") if row.type in THREAD_TYPES else E(f"CHANNEL_{base}")


def _audience(row: Any) -> dict[str, Any]:
    """Where a channel's own events go: its guild (filtered by view permission on the channel
    itself), or a DM's recipients."""
    if row.guild_id is None:
        return {"user_ids": list(row.recipients), "channel_id": row.id}
    return {"guild_id": row.guild_id, "channel_id": row.id}


async def get_channel(platform: Platform, user_id: int, channel_id: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        return await channel_object(conn, access.channel, user_id)


async def list_guild_channels(platform: Platform, user_id: int, guild_id: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        rows = await visible_channels(conn, access, user_id)
    return [shapes.channel(r) for r, _ in rows if r.type not in THREAD_TYPES]


async def list_active_threads(platform: Platform, user_id: int, guild_id: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await guild_access(conn, user_id, guild_id)
        rows = await visible_channels(conn, access, user_id)
        threads = [r for r, _ in rows if r.type in THREAD_TYPES and not (r.thread_metadata or {}).get("archived")]
        mine = (await conn.execute(select(ThreadMember.thread_id, ThreadMember.joined_at).where(
            ThreadMember.user_id == user_id, ThreadMember.thread_id.in_([t.id for t in threads])))).all() if threads else []
    return {
        "threads": [shapes.channel(t) for t in threads],
        "members": [thread_member(t.thread_id, user_id, t.joined_at) for t in mine],
    }


def _check_parent(parent: Any, guild_id: int) -> None:
    if parent is None or parent.guild_id != guild_id or parent.type != GUILD_CATEGORY:
        raise InvalidFormBody.field("parent_id", "CHANNEL_PARENT_INVALID", "Parent must be a category of this guild.")


async def do_create_guild_channel(platform: Platform, user_id: int, guild_id: int, values: dict[str, Any],
                                  reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await guild_access(tx.conn, user_id, guild_id)
        access.require(int(P.MANAGE_CHANNELS))
        ctype = values.get("type", GUILD_TEXT)
        if ctype not in GUILD_CHANNEL_TYPES:
            raise InvalidFormBody.field("type", "BASE_TYPE_CHOICES", "Value must be one of {0, 4, 5}.")
        if values.get("parent_id") is not None:
            parent = (await tx.conn.execute(select(Channel).where(Channel.id == values["parent_id"]))).first()
            _check_parent(parent, guild_id)
        if values.get("permission_overwrites"):
            access.require(int(P.MANAGE_ROLES))
        count = (await tx.conn.execute(select(func.count()).select_from(Channel).where(Channel.guild_id == guild_id))).scalar_one()
        if count >= 500:
            raise InvalidFormBody("Maximum number of guild channels reached (500)")
        row = (await tx.conn.execute(insert(Channel).values(id=new_id(), guild_id=guild_id, **values).returning(Channel))).one()
        obj = shapes.channel(row)
        await tx.emit(E.CHANNEL_CREATE, obj, guild_id=guild_id, channel_id=row.id)
        await tx.audit(guild_id=guild_id, user_id=user_id, action_type=A.CHANNEL_CREATE, target_id=row.id,
                       changes=changes(None, {"name": row.name, "type": row.type}), reason=reason)
    return obj


async def do_modify_channel(platform: Platform, user_id: int, channel_id: int, values: dict[str, Any], reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        row = access.channel
        if row.type in (DM,):
            raise MissingPermissions()
        if row.type == GROUP_DM:
            values = {k: v for k, v in values.items() if k == "name"}
        elif row.type in THREAD_TYPES:
            values = _thread_changes(access, user_id, values)
        else:
            access.require(int(P.MANAGE_CHANNELS))
            if "permission_overwrites" in values:
                access.require(int(P.MANAGE_ROLES))
            if values.get("parent_id") is not None:
                parent = (await tx.conn.execute(select(Channel).where(Channel.id == values["parent_id"]))).first()
                _check_parent(parent, row.guild_id)
            if row.type == GUILD_CATEGORY:
                values.pop("parent_id", None)
        before = {k: getattr(row, k) for k in values if hasattr(row, k)}
        if values:
            row = (await tx.conn.execute(update(Channel).where(Channel.id == channel_id).values(**values).returning(Channel))).one()
        obj = await channel_object(tx.conn, row, user_id)
        await tx.emit(_emit_kind(row, "UPDATE"), obj, **_audience(row))
        if row.guild_id is not None:
            action = A.THREAD_UPDATE if row.type in THREAD_TYPES else A.CHANNEL_UPDATE
            await tx.audit(guild_id=row.guild_id, user_id=user_id, action_type=action, target_id=channel_id,
                           changes=changes(before, {k: v for k, v in values.items() if k != "permission_overwrites"}), reason=reason)
    return obj


def _thread_changes(access: ChannelAccess, user_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """What a thread edit may change: its creator renames, archives and unarchives it; only
    MANAGE_THREADS locks it, or touches a locked thread or someone else's."""
    row = access.channel
    meta = dict(row.thread_metadata or {})
    manager = access.can(int(P.MANAGE_THREADS))
    if not manager and (row.owner_id != user_id or meta.get("locked") or "locked" in values):
        raise MissingPermissions()
    for key in ("archived", "locked", "auto_archive_duration", "invitable"):
        if key in values:
            meta[key] = values[key]
    if "archived" in values:
        meta["archive_timestamp"] = datetime.now(timezone.utc).isoformat()
    out = {k: v for k, v in values.items() if k in ("name", "rate_limit_per_user")}
    out["thread_metadata"] = meta
    return out


async def do_delete_channel(platform: Platform, user_id: int, channel_id: int, reason: str | None) -> dict[str, Any]:
    """Deletes a channel with its messages, its threads and their files. Deleting a DM only
    closes it for the caller in Discord; here a DM is kept and simply returned."""
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        row = access.channel
        if row.type in (DM, GROUP_DM):
            return await channel_object(tx.conn, row, user_id)
        if row.type in THREAD_TYPES:
            if not (access.can(int(P.MANAGE_THREADS))):
                raise MissingPermissions()
        else:
            access.require(int(P.MANAGE_CHANNELS))
        doomed = [channel_id] + list((await tx.conn.execute(select(Channel.id).where(
            Channel.parent_id == channel_id, Channel.type.in_(THREAD_TYPES)))).scalars().all())
        keys = (await tx.conn.execute(text("SELECT storage_key FROM attachments WHERE channel_id = ANY(:ids)"), {"ids": doomed})).scalars().all()
        obj = await channel_object(tx.conn, row, user_id)
        # a category's children move to the top level
        moved = (await tx.conn.execute(update(Channel).where(Channel.parent_id == channel_id, Channel.type.notin_(THREAD_TYPES))
                                       .values(parent_id=None).returning(Channel))).all()
        await tx.conn.execute(delete(Channel).where(Channel.id.in_(doomed)))
        # the messages that started the deleted threads no longer have one (and say so)
        starters = (await tx.conn.execute(text(
            "UPDATE messages SET thread_id = NULL, flags = flags & ~CAST(:has AS int) WHERE thread_id = ANY(:ids) RETURNING id, channel_id"),
            {"ids": doomed, "has": shapes.HAS_THREAD})).all()
        for starter in starters:
            starter_obj = (await load_messages(tx.conn, "m.id = :mid", {"mid": starter.id}, me=user_id,
                                               base_url=platform.settings.base_url, limit=1))[0]
            await tx.emit(E.MESSAGE_UPDATE, starter_obj, guild_id=row.guild_id, channel_id=starter.channel_id)
        for child in moved:
            await tx.emit(E.CHANNEL_UPDATE, shapes.channel(child), guild_id=child.guild_id, channel_id=child.id)
        for thread_id in doomed[1:]:
            await tx.emit(E.THREAD_DELETE, {"id": str(thread_id), "guild_id": str(row.guild_id), "parent_id": str(channel_id), "type": PUBLIC_THREAD},
                          guild_id=row.guild_id)
        # deleted channels are announced guild-wide: the permission check can no longer see them
        await tx.emit(_emit_kind(row, "DELETE"), obj, guild_id=row.guild_id)
        action = A.THREAD_DELETE if row.type in THREAD_TYPES else A.CHANNEL_DELETE
        await tx.audit(guild_id=row.guild_id, user_id=user_id, action_type=action, target_id=channel_id,
                       changes=changes(None, {"name": row.name, "type": row.type}), reason=reason)
    await platform.delete_objects(list(keys))
    return obj


async def do_set_overwrite(platform: Platform, user_id: int, channel_id: int, target_id: int, *, type: int, allow: int, deny: int,
                           reason: str | None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        if access.channel.guild_id is None or access.is_thread:
            raise InvalidFormBody("Permission overwrites are for guild channels")
        access.require(int(P.MANAGE_ROLES))
        if not access.can(allow | deny) and access.owner_id != user_id:
            raise MissingPermissions()  # nobody grants or revokes what they do not have
        current = [o for o in access.channel.permission_overwrites if int(o["id"]) != target_id]
        existed = len(current) != len(access.channel.permission_overwrites)
        current.append({"id": target_id, "type": type, "allow": allow, "deny": deny})
        row = (await tx.conn.execute(update(Channel).where(Channel.id == channel_id).values(permission_overwrites=current).returning(Channel))).one()
        await tx.emit(E.CHANNEL_UPDATE, shapes.channel(row), guild_id=row.guild_id, channel_id=row.id)
        await tx.audit(guild_id=row.guild_id, user_id=user_id,
                       action_type=A.CHANNEL_OVERWRITE_UPDATE if existed else A.CHANNEL_OVERWRITE_CREATE, target_id=channel_id,
                       changes=changes(None, {"id": str(target_id), "type": type, "allow": str(allow), "deny": str(deny)}), reason=reason)


async def do_delete_overwrite(platform: Platform, user_id: int, channel_id: int, target_id: int, reason: str | None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        access.require(int(P.MANAGE_ROLES))
        current = [o for o in access.channel.permission_overwrites if int(o["id"]) != target_id]
        if len(current) == len(access.channel.permission_overwrites):
            raise UnknownOverwrite()
        row = (await tx.conn.execute(update(Channel).where(Channel.id == channel_id).values(permission_overwrites=current).returning(Channel))).one()
        await tx.emit(E.CHANNEL_UPDATE, shapes.channel(row), guild_id=row.guild_id, channel_id=row.id)
        await tx.audit(guild_id=row.guild_id, user_id=user_id, action_type=A.CHANNEL_OVERWRITE_DELETE, target_id=channel_id,
                       options={"id": str(target_id)}, reason=reason)


# --- DMs -----------------------------------------------------------------------------------

async def do_open_dm(platform: Platform, user_id: int, recipient_ids: list[int], name: str | None = None) -> dict[str, Any]:
    """One recipient: the (unique) DM between the two users. Several: a new group DM."""
    ids = sorted(set(recipient_ids) - {user_id})
    if not ids or len(ids) > 9:
        raise InvalidRecipients()
    async with platform.transaction() as tx:
        found = (await tx.conn.execute(select(User.id).where(User.id.in_(ids)))).scalars().all()
        if len(found) != len(ids):
            raise UnknownUser()
        pair = sorted([user_id, *ids])
        if len(ids) == 1:
            # serialise concurrent opens of the same pair so there is only ever one DM
            await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": pair[0] & 0x7FFFFFFF, "b": pair[1] & 0x7FFFFFFF})
            existing = (await tx.conn.execute(select(Channel).where(Channel.type == DM, Channel.recipients == pair))).first()
            if existing is not None:
                return await channel_object(tx.conn, existing, user_id)
        ctype = DM if len(ids) == 1 else GROUP_DM
        row = (await tx.conn.execute(insert(Channel).values(id=new_id(), type=ctype, recipients=pair, owner_id=user_id,
                                                             name=name if ctype == GROUP_DM else None).returning(Channel))).one()
        # No CHANNEL_CREATE: Discord dispatches none for private channels (libraries assert a guild
        # channel); a recipient learns of the channel from its first MESSAGE_CREATE.
        return await channel_object(tx.conn, row, user_id)


async def list_dms(platform: Platform, user_id: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        rows = (await conn.execute(select(Channel).where(Channel.recipients.any_() == user_id).order_by(Channel.last_message_id.desc().nulls_last()))).all()
        return [await channel_object(conn, r, user_id) for r in rows]


# --- threads -------------------------------------------------------------------------------

def thread_member(thread_id: int, user_id: int, joined_at: Any) -> dict[str, Any]:
    """Discord's thread member object (libraries read every one of these keys)."""
    return {"id": str(thread_id), "user_id": str(user_id), "join_timestamp": shapes.iso(joined_at), "flags": 0}


async def _count_thread_members(tx: Tx, thread_id: int) -> int:
    """Stores the thread's member count in its metadata and returns it."""
    return (await tx.conn.execute(text(
        "UPDATE channels SET thread_metadata = jsonb_set(coalesce(thread_metadata, '{}'), '{member_count}', "
        "to_jsonb((SELECT count(*) FROM thread_members WHERE thread_id = :t))) WHERE id = :t "
        "RETURNING (thread_metadata->>'member_count')::int"), {"t": thread_id})).scalar_one()


async def _join_thread(tx: Tx, thread: Any, user_id: int) -> bool:
    added = (await tx.conn.execute(text(
        "INSERT INTO thread_members (thread_id, user_id) VALUES (:t, :u) ON CONFLICT DO NOTHING RETURNING user_id, joined_at"),
        {"t": thread.id, "u": user_id})).first()
    if added is None:
        return False
    count = await _count_thread_members(tx, thread.id)
    await tx.emit(E.THREAD_MEMBERS_UPDATE, {"id": str(thread.id), "guild_id": str(thread.guild_id), "member_count": count,
                                             "added_members": [thread_member(thread.id, user_id, added.joined_at)],
                                             "removed_member_ids": []},
                  guild_id=thread.guild_id, channel_id=thread.id)
    return True


async def do_create_thread(platform: Platform, user_id: int, channel_id: int, *, name: str, type: int, message_id: int | None,
                           auto_archive_duration: int, invitable: bool, reason: str | None) -> dict[str, Any]:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        parent = access.channel
        if parent.type not in (GUILD_TEXT, GUILD_ANNOUNCEMENT):
            raise InvalidFormBody("Threads can only be created in guild text channels")
        if message_id is not None:
            type = PUBLIC_THREAD
        needed = P.CREATE_PRIVATE_THREADS if type == PRIVATE_THREAD else P.CREATE_PUBLIC_THREADS
        access.require(int(needed | P.VIEW_CHANNEL))
        thread_id = message_id if message_id is not None else new_id()  # Discord: a message's thread shares its id
        if message_id is not None:
            msg = (await tx.conn.execute(select(Message).where(Message.id == message_id, Message.channel_id == channel_id).with_for_update())).first()
            if msg is None:
                raise UnknownMessage()
            if msg.thread_id is not None:
                raise InvalidFormBody("A thread has already been created for this message")
            await tx.conn.execute(update(Message).where(Message.id == message_id)
                                  .values(thread_id=thread_id, flags=Message.flags.op("|")(shapes.HAS_THREAD)))
        meta = {"archived": False, "locked": False, "auto_archive_duration": auto_archive_duration, "invitable": invitable, "member_count": 0}
        row = (await tx.conn.execute(insert(Channel).values(
            id=thread_id, guild_id=parent.guild_id, type=type, name=name, parent_id=channel_id, owner_id=user_id,
            thread_metadata=meta).returning(Channel))).one()
        await tx.emit(E.THREAD_CREATE, {**shapes.channel(row), "newly_created": True}, guild_id=parent.guild_id, channel_id=row.id)
        await _join_thread(tx, row, user_id)
        row = (await tx.conn.execute(select(Channel).where(Channel.id == thread_id))).one()
        if message_id is not None:  # the starter now carries HAS_THREAD and its thread (Discord sends the update too)
            starter = (await load_messages(tx.conn, "m.id = :mid", {"mid": message_id}, me=user_id,
                                           base_url=platform.settings.base_url, limit=1))[0]
            await tx.emit(E.MESSAGE_UPDATE, starter, guild_id=parent.guild_id, channel_id=channel_id)
        await tx.audit(guild_id=parent.guild_id, user_id=user_id, action_type=A.THREAD_CREATE, target_id=thread_id,
                       changes=changes(None, {"name": name, "type": type}), reason=reason)
    return shapes.channel(row)


async def do_join_thread(platform: Platform, user_id: int, thread_id: int, target_id: int | None = None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, thread_id)
        if not access.is_thread:
            raise UnknownChannel()
        meta = access.channel.thread_metadata or {}
        if meta.get("archived") or meta.get("locked"):
            raise ThreadLocked()
        member = target_id if target_id is not None else user_id
        if member != user_id:
            access.require(int(access.send_permission))
            if access.channel.type == PRIVATE_THREAD and not meta.get("invitable", True) and not access.can(int(P.MANAGE_THREADS)):
                raise MissingPermissions()
            exists = (await tx.conn.execute(text("SELECT 1 FROM members WHERE guild_id = :g AND user_id = :u"),
                                            {"g": access.guild_id, "u": member})).first()
            if exists is None:
                raise UnknownUser()
        await _join_thread(tx, access.channel, member)


async def do_leave_thread(platform: Platform, user_id: int, thread_id: int, target_id: int | None = None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, thread_id)
        if not access.is_thread:
            raise UnknownChannel()
        member = target_id if target_id is not None else user_id
        if member != user_id:
            access.require(int(P.MANAGE_THREADS))
        removed = (await tx.conn.execute(delete(ThreadMember).where(ThreadMember.thread_id == thread_id, ThreadMember.user_id == member)
                                         .returning(ThreadMember.user_id))).first()
        if removed is None:
            return
        count = await _count_thread_members(tx, thread_id)
        await tx.emit(E.THREAD_MEMBERS_UPDATE, {"id": str(thread_id), "guild_id": str(access.guild_id), "member_count": count,
                                                 "added_members": [], "removed_member_ids": [str(member)]},
                      guild_id=access.guild_id, channel_id=thread_id)
        if access.channel.type == PRIVATE_THREAD:
            # the removed member can no longer see the thread: tell them directly
            await tx.emit(E.THREAD_DELETE, {"id": str(thread_id), "guild_id": str(access.guild_id),
                                            "parent_id": str(access.channel.parent_id), "type": PRIVATE_THREAD}, user_ids=[member])


async def list_thread_members(platform: Platform, user_id: int, thread_id: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, thread_id)
        if not access.is_thread:
            raise UnknownChannel()
        rows = (await conn.execute(select(ThreadMember).where(ThreadMember.thread_id == thread_id).order_by(ThreadMember.user_id))).all()
    return [thread_member(thread_id, r.user_id, r.joined_at) for r in rows]
