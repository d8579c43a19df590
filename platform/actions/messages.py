"""Messages: send (idempotent with a nonce), edit, delete, bulk delete, pins, history.

The send path is the hottest path of the platform: with the token remembered, it runs two
statements in autocommit, the channel access and one write (message with ON CONFLICT on the
nonce, its event row, the channel's last message id). The query-count test keeps it there."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import text

from ..core.errors import (
    CannotEditOthersMessage, CannotSendInChannelType, EmptyMessage, InvalidFormBody, MaxPins, MissingPermissions, ThreadLocked,
    TooManyMessagesToDelete, UnknownMessage,
)
from ..core.permissions import P
from ..core.snowflake import new_id, snowflake_from_time
from ..db.raw import fetch_rows
from ..events.types import E
from . import shapes
from .access import DM, GROUP_DM, TEXT_TYPES, THREAD_TYPES, ChannelAccess, channel_access
from .attachments import store_uploads
from .audit import A
from .context import Platform, Tx

USER_MENTION = re.compile(r"<@!?(\d{1,20})>")
ROLE_MENTION = re.compile(r"<@&(\d{1,20})>")
CHANNEL_MENTION = re.compile(r"<#(\d{1,20})>")
EVERYONE = re.compile(r"@(everyone|here)\b")
MAX_INT64 = (1 << 63) - 1


@dataclass
class NewMessage:
    content: str = ""
    nonce: str | None = None
    tts: bool = False
    embeds: list[dict[str, Any]] = field(default_factory=list)
    reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    flags: int = 0
    uploads: list[Any] = field(default_factory=list)  # attachments.Upload, stored by do_send_message
    attachments: list[dict[str, Any]] = field(default_factory=list)  # stored rows: id, filename, storage_key, ...


@dataclass
class Mentions:
    users: list[int]
    roles: list[int]
    channels: list[int]
    everyone: bool
    user_objects: list[dict[str, Any]] = field(default_factory=list)  # as PostgreSQL built them, in `users` order


def _ids(pattern: re.Pattern[str], content: str) -> list[int]:
    seen: dict[int, None] = {}
    for m in pattern.finditer(content):
        value = int(m.group(1))
        if 0 < value <= MAX_INT64:
            seen[value] = None
    return list(seen)


_RESOLVE_MENTIONS = text(
    """
    SELECT
      (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'username', u.username, 'global_name', u.global_name,
                                                    'avatar', u.avatar, 'bot', u.bot)), '[]')
         FROM users u WHERE u.id = ANY(:users)) AS users,
      (SELECT coalesce(array_agg(r.id), '{}') FROM roles r WHERE r.id = ANY(:roles) AND r.guild_id = :gid
         AND (r.mentionable OR :can_everyone)) AS roles,
      (SELECT coalesce(array_agg(c.id), '{}') FROM channels c WHERE c.id = ANY(:channels) AND c.guild_id = :gid) AS channels
    """
)


async def parse_mentions(conn: Any, access: ChannelAccess, content: str, allowed: dict[str, Any] | None,
                         replied_author: int | None) -> Mentions:
    """`<@id>` of existing users, `<@&id>` of this guild's mentionable roles, `<#id>` of this
    guild's channels, and @everyone/@here only with MENTION_EVERYONE. `allowed_mentions`
    narrows what notifies (Discord's semantics)."""
    users, roles, channels = _ids(USER_MENTION, content), _ids(ROLE_MENTION, content), _ids(CHANNEL_MENTION, content)
    can_everyone = access.can(int(P.MENTION_EVERYONE))
    everyone = bool(EVERYONE.search(content)) and can_everyone and access.guild_id is not None
    if allowed is not None:
        parse = set(allowed.get("parse") or [])
        explicit_users = {int(u) for u in allowed.get("users") or []}
        explicit_roles = {int(r) for r in allowed.get("roles") or []}
        users = [u for u in users if "users" in parse or u in explicit_users]
        roles = [r for r in roles if "roles" in parse or r in explicit_roles]
        everyone = everyone and "everyone" in parse
        if replied_author is not None and allowed.get("replied_user") and replied_author not in users:
            users.append(replied_author)
    elif replied_author is not None and replied_author not in users:
        users.append(replied_author)  # a reply pings its author unless allowed_mentions says no
    if users or roles or channels:
        row = (await conn.execute(_RESOLVE_MENTIONS, {"users": users, "roles": roles, "channels": channels,
                                                      "gid": access.guild_id, "can_everyone": can_everyone})).one()
        found = {int(u["id"]): u for u in row.users}
        users = [u for u in users if u in found]
        user_objects = [found[u] for u in users]
        found_roles = set(row.roles)
        roles = [r for r in roles if r in found_roles]
        found_channels = set(row.channels)
        channels = [c for c in channels if c in found_channels]
        return Mentions(users, roles, channels, everyone, user_objects)
    return Mentions(users, roles, channels, everyone)


def check_sendable(access: ChannelAccess) -> None:
    ch = access.channel
    if ch.type not in TEXT_TYPES:
        raise CannotSendInChannelType()
    access.require(access.send_permission)
    if ch.type in THREAD_TYPES:
        meta = ch.thread_metadata or {}
        if meta.get("locked") and not access.can(int(P.MANAGE_THREADS)):
            raise ThreadLocked()


# The whole write of a send in one statement (one round trip): the message, its event (with the
# NOTIFY that wakes the publisher), and the channel's last message. The channel row is locked
# last and only until the commit that follows at once, so senders to one channel barely wait.
_SEND = text(
    """
    WITH m AS (
        INSERT INTO messages (id, channel_id, guild_id, author_id, type, content, nonce, tts, mention_everyone, mentions,
                              mention_roles, mention_channels, reference, referenced_message_id, embeds, has_attachments, flags)
        VALUES (:id, :channel_id, :guild_id, :author_id, :type, :content, :nonce, :tts, :mention_everyone, :mentions,
                :mention_roles, :mention_channels, CAST(:reference AS jsonb), :referenced_message_id, CAST(:embeds AS jsonb),
                :has_attachments, :flags)
        ON CONFLICT (channel_id, author_id, nonce) WHERE nonce IS NOT NULL DO NOTHING
        RETURNING id
    ), e AS (
        INSERT INTO events (type, data, guild_id, channel_id, user_ids)
        SELECT 'MESSAGE_CREATE', CAST(:event AS jsonb), :guild_id, :channel_id, :user_ids FROM m
        RETURNING 1
    ), c AS (
        UPDATE channels SET last_message_id = greatest(coalesce(last_message_id, 0), :id), message_count = message_count + 1,
          thread_metadata = CASE WHEN type IN (10, 11, 12) AND (thread_metadata->>'archived')::boolean
                                 THEN thread_metadata || '{"archived": false}' ELSE thread_metadata END
        WHERE id = :channel_id AND EXISTS (SELECT 1 FROM m)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM m) AS inserted, (SELECT count(*) FROM c) AS touched,
           (SELECT pg_notify(:notify, '') FROM e) IS NULL AS notified
    """
)

_ATTACH = text(
    "INSERT INTO attachments (id, message_id, channel_id, filename, description, content_type, size, storage_key, width, height) "
    "SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(id bigint, message_id bigint, channel_id bigint, filename text, "
    "description text, content_type text, size bigint, storage_key text, width int, height int)"
)

_REFERENCED = text(
    """
    SELECT m.id, m.type, m.channel_id, m.content, m.mention_everyone, m.edited_at, m.pinned_at, m.author_id, m.flags,
           jsonb_build_object('id', u.id, 'username', u.username, 'global_name', u.global_name, 'avatar', u.avatar, 'bot', u.bot) AS author,
           CASE WHEN m.thread_id IS NOT NULL THEN
             (SELECT """ + shapes.THREAD_JSON_SQL.format(t="t") + """ FROM channels t WHERE t.id = m.thread_id) END AS thread
    FROM messages m JOIN users u ON u.id = m.author_id WHERE m.id = :id AND m.channel_id = :cid
    """
)


async def _existing_by_nonce(platform: Platform, conn: Any, channel_id: int, author_id: int, nonce: str, me: int) -> dict[str, Any]:
    rows = await load_messages(conn, "m.channel_id = :cid AND m.author_id = :aid AND m.nonce = :nonce",
                               {"cid": channel_id, "aid": author_id, "nonce": nonce}, me=me, base_url=platform.settings.base_url)
    return rows[0]


async def do_send_message(platform: Platform, author: Any, channel_id: int, new: NewMessage) -> dict[str, Any]:
    """Sends a message as `author` (an AuthUser). With a nonce already used by this author in
    this channel, returns the first message and writes nothing.

    Files are written to the object store only after the sender was checked (so a refused
    upload stores nothing), and removed again if the message is not written after all."""
    if not new.content.strip() and not new.uploads and not new.attachments and not new.embeds:
        raise EmptyMessage()
    if not new.uploads:
        return await _send(platform, author, channel_id, new)
    async with platform.read() as conn:
        access = await channel_access(conn, author.id, channel_id)
        check_sendable(access)
        access.require(int(P.ATTACH_FILES))
    new.attachments = await store_uploads(platform, channel_id, new.uploads)
    keys = [a["storage_key"] for a in new.attachments]
    try:
        sent = await _send(platform, author, channel_id, new)
    except BaseException:
        await platform.delete_objects(keys)
        raise
    if {a["id"] for a in sent["attachments"]} != {str(a["id"]) for a in new.attachments}:
        await platform.delete_objects(keys)  # a retried send (nonce): the first message's files stay
    return sent


async def _send(platform: Platform, author: Any, channel_id: int, new: NewMessage) -> dict[str, Any]:
    if new.attachments:  # two writes (message, then its attachments): one transaction
        async with platform.transaction() as tx:
            return await _write_message(platform, tx.conn, author, channel_id, new)
    # One write statement holds the message, its event and the channel's update, and is atomic
    # by itself; the reads before it see the same as they would inside a READ COMMITTED
    # transaction. So no BEGIN/COMMIT round trips on the hottest path.
    async with platform.read() as conn:
        sent = await _write_message(platform, conn, author, channel_id, new)
    platform.publisher.wake()
    return sent


async def _write_message(platform: Platform, conn: Any, author: Any, channel_id: int, new: NewMessage) -> dict[str, Any]:
    message_id = new_id()
    access = await channel_access(conn, author.id, channel_id)
    check_sendable(access)
    if new.attachments:
        access.require(int(P.ATTACH_FILES))
    if new.tts and not access.can(int(P.SEND_TTS_MESSAGES)):
        new.tts = False
    referenced = None
    reference = None
    if new.reference is not None:
        access.require(int(P.READ_MESSAGE_HISTORY))
        ref_id = new.reference["message_id"]
        referenced = (await conn.execute(_REFERENCED, {"id": ref_id, "cid": channel_id})).first()
        if referenced is None and new.reference.get("fail_if_not_exists", True):
            raise InvalidFormBody.field("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        if referenced is not None:  # an unknown reference with fail_if_not_exists=false: a plain message
            reference = {"type": 0, "message_id": str(ref_id), "channel_id": str(channel_id)}
            if access.guild_id is not None:
                reference["guild_id"] = str(access.guild_id)
    mentions = Mentions([], [], [], False)
    if "<" in new.content or "@" in new.content or referenced is not None:
        mentions = await parse_mentions(conn, access, new.content, new.allowed_mentions,
                                        referenced.author_id if referenced is not None else None)
    values = {
        "id": message_id, "channel_id": channel_id, "guild_id": access.guild_id, "author_id": author.id,
        "type": 19 if reference else 0, "content": new.content, "nonce": new.nonce, "tts": new.tts,
        "mention_everyone": mentions.everyone, "mentions": mentions.users, "mention_roles": mentions.roles,
        "mention_channels": mentions.channels, "reference": reference,
        "referenced_message_id": referenced.id if referenced is not None else None,
        "embeds": new.embeds, "has_attachments": bool(new.attachments), "flags": new.flags, "edited_at": None,
        "pinned_at": None, "thread_id": None,
    }
    obj = _message_object(platform, values, author.as_author(), mentions.user_objects, new.attachments, referenced, channel_id)
    audience = _audience(access)
    event = obj
    if access.guild_id is not None:  # Discord's guild MESSAGE_CREATE carries the author's member (without its user)
        event = {**obj, "member": shapes.partial_member(access.member_roles, access.channel.member_nick,
                                                        access.channel.member_joined_at, access.guild_id)}
    result = (await conn.execute(_SEND, {
        **values, "reference": _json(reference), "embeds": _json(new.embeds), "event": _json(event),
        "user_ids": audience.get("user_ids"), "notify": platform.notify_channel,
    })).one()
    if not result.inserted:  # a retried send: hand back the original
        return await _existing_by_nonce(platform, conn, channel_id, author.id, new.nonce or "", author.id)
    if new.attachments:
        await conn.execute(_ATTACH, {"rows": _json([{**a, "message_id": message_id, "channel_id": channel_id}
                                                        for a in new.attachments])})
    return obj


def _json(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _audience(access: ChannelAccess) -> dict[str, Any]:
    ch = access.channel
    if ch.guild_id is None:
        return {"channel_id": ch.id, "user_ids": list(ch.recipients)}
    return {"channel_id": ch.id, "guild_id": ch.guild_id}


def _message_object(platform: Platform, values: dict[str, Any], author: dict[str, Any], mention_users: list[dict[str, Any]],
                    attachments: list[dict[str, Any]], referenced: Any, channel_id: int) -> dict[str, Any]:
    """The new message's object, built from the values about to be written (no read-back)."""
    row = SimpleNamespace(**values, mention_users=mention_users, attachments=[{**a, "channel_id": channel_id} for a in attachments],
                          reactions=[], referenced=dict(referenced._mapping) if referenced is not None else None)
    return shapes.message(row, author=author, base_url=platform.settings.base_url)


# --- reading -------------------------------------------------------------------------------

# Every column but the search vector, which no reader needs and which costs to decode.
_PAGE = """
    SELECT m.id, m.channel_id, m.guild_id, m.author_id, m.type, m.content, m.nonce, m.tts, m.edited_at, m.pinned_at,
      m.mention_everyone, m.mentions, m.mention_roles, m.mention_channels, m.reference, m.referenced_message_id,
      m.thread_id, m.embeds, m.has_attachments, m.flags,
      jsonb_build_object('id', u.id, 'username', u.username, 'global_name', u.global_name, 'avatar', u.avatar, 'bot', u.bot) AS author,
      (SELECT jsonb_agg(jsonb_build_object('emoji', x.emoji, 'count', x.n, 'me', x.me) ORDER BY x.first)
         FROM (SELECT r.emoji, count(*) AS n, bool_or(r.user_id = :me) AS me, min(r.created_at) AS first
               FROM reactions r WHERE r.message_id = m.id GROUP BY r.emoji) x) AS reactions,
      CASE WHEN m.has_attachments THEN
        (SELECT jsonb_agg(to_jsonb(a) ORDER BY a.id) FROM attachments a WHERE a.message_id = m.id) END AS attachments,
      CASE WHEN cardinality(m.mentions) > 0 THEN
        (SELECT jsonb_agg(jsonb_build_object('id', mu.id, 'username', mu.username, 'global_name', mu.global_name,
                                             'avatar', mu.avatar, 'bot', mu.bot))
           FROM users mu WHERE mu.id = ANY(m.mentions)) END AS mention_users,
      CASE WHEN m.referenced_message_id IS NOT NULL THEN
        (SELECT jsonb_build_object('id', rm.id, 'type', rm.type, 'channel_id', rm.channel_id, 'content', rm.content,
                                   'mention_everyone', rm.mention_everyone, 'edited_at', rm.edited_at, 'pinned_at', rm.pinned_at,
                                   'flags', rm.flags,
                                   'author', jsonb_build_object('id', ru.id, 'username', ru.username, 'global_name', ru.global_name,
                                                                'avatar', ru.avatar, 'bot', ru.bot),
                                   'thread', (SELECT """ + shapes.THREAD_JSON_SQL.format(t="rt") + """ FROM channels rt WHERE rt.id = rm.thread_id))
           FROM messages rm JOIN users ru ON ru.id = rm.author_id WHERE rm.id = m.referenced_message_id) END AS referenced,
      CASE WHEN m.thread_id IS NOT NULL THEN
        (SELECT """ + shapes.THREAD_JSON_SQL.format(t="t") + """ FROM channels t WHERE t.id = m.thread_id) END AS thread
    FROM messages m JOIN users u ON u.id = m.author_id
    WHERE {where}
    ORDER BY m.id {order}
    LIMIT :limit
"""


async def load_messages(conn: Any, where: str, params: dict[str, Any], *, me: int, base_url: str, order: str = "DESC",
                        limit: int = 50) -> list[dict[str, Any]]:
    rows = await fetch_rows(conn, _PAGE.format(where=where, order=order), {**params, "me": me, "limit": limit})
    return [shapes.message(r, author=shapes.user_json(r.author), base_url=base_url, me=me) for r in rows]


def check_readable(access: ChannelAccess) -> None:
    access.require(int(P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY))


async def get_history(platform: Platform, user_id: int, channel_id: int, *, before: int | None, after: int | None,
                      around: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest first, like Discord. `around` returns up to `limit` messages centred on the id."""
    base_url = platform.settings.base_url
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        check_readable(access)
        params = {"cid": channel_id}
        if around is not None:
            newer = await load_messages(conn, "m.channel_id = :cid AND m.id >= :around", {**params, "around": around}, me=user_id,
                                        base_url=base_url, order="ASC", limit=(limit + 1) // 2)
            older = await load_messages(conn, "m.channel_id = :cid AND m.id < :around", {**params, "around": around}, me=user_id,
                                        base_url=base_url, order="DESC", limit=limit // 2)
            return list(reversed(newer)) + older
        if after is not None:
            page = await load_messages(conn, "m.channel_id = :cid AND m.id > :after", {**params, "after": after}, me=user_id,
                                       base_url=base_url, order="ASC", limit=limit)
            return list(reversed(page))
        if before is not None:
            return await load_messages(conn, "m.channel_id = :cid AND m.id < :before", {**params, "before": before}, me=user_id,
                                       base_url=base_url, limit=limit)
        return await load_messages(conn, "m.channel_id = :cid", params, me=user_id, base_url=base_url, limit=limit)


async def get_message(platform: Platform, user_id: int, channel_id: int, message_id: int) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        check_readable(access)
        rows = await load_messages(conn, "m.channel_id = :cid AND m.id = :mid", {"cid": channel_id, "mid": message_id},
                                   me=user_id, base_url=platform.settings.base_url, limit=1)
    if not rows:
        raise UnknownMessage()
    return rows[0]


# --- editing and deleting ------------------------------------------------------------------

async def _locked_message(tx: Tx, channel_id: int, message_id: int) -> Any:
    row = (await tx.conn.execute(text("SELECT * FROM messages WHERE id = :id AND channel_id = :cid FOR UPDATE"),
                                 {"id": message_id, "cid": channel_id})).first()
    if row is None:
        raise UnknownMessage()
    return row


async def do_edit_message(platform: Platform, user: Any, channel_id: int, message_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Authors edit their content and embeds; MANAGE_MESSAGES may only change flags of others'."""
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user.id, channel_id)
        row = await _locked_message(tx, channel_id, message_id)
        if row.author_id != user.id:
            if set(changes) - {"flags"}:
                raise CannotEditOthersMessage()
            access.require(int(P.MANAGE_MESSAGES))
        values: dict[str, Any] = {}
        if "content" in changes:
            content = changes["content"] or ""
            if not content.strip() and not row.has_attachments and not changes.get("embeds", row.embeds):
                raise EmptyMessage()
            mentions = await parse_mentions(tx.conn, access, content, changes.get("allowed_mentions"), None)
            values.update(content=content, mentions=mentions.users, mention_roles=mentions.roles,
                          mention_channels=mentions.channels, mention_everyone=mentions.everyone)
        if "embeds" in changes:
            values["embeds"] = _json(changes["embeds"] or [])
        if "flags" in changes:  # only SUPPRESS_EMBEDS may be toggled; the others (HAS_THREAD...) stay
            values["flags"] = (row.flags & ~4) | (int(changes["flags"]) & 4)
        if values:
            sets = ", ".join(f"{k} = :{k}" if k != "embeds" else "embeds = CAST(:embeds AS jsonb)" for k in values)
            await tx.conn.execute(text(f"UPDATE messages SET {sets}, edited_at = now() WHERE id = :id"), {**values, "id": message_id})
        obj = (await load_messages(tx.conn, "m.id = :mid", {"mid": message_id}, me=user.id, base_url=platform.settings.base_url, limit=1))[0]
        await tx.emit(E.MESSAGE_UPDATE, obj, **_audience(access))
    return obj


async def do_delete_message(platform: Platform, user_id: int, channel_id: int, message_id: int, reason: str | None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        row = await _locked_message(tx, channel_id, message_id)
        if row.author_id != user_id:
            access.require(int(P.MANAGE_MESSAGES))
        keys = (await tx.conn.execute(text("SELECT storage_key FROM attachments WHERE message_id = :id"), {"id": message_id})).scalars().all()
        await tx.conn.execute(text("DELETE FROM messages WHERE id = :id"), {"id": message_id})
        await _after_delete(tx, channel_id, 1)
        payload = {"id": str(message_id), "channel_id": str(channel_id)}
        if access.guild_id is not None:
            payload["guild_id"] = str(access.guild_id)
        await tx.emit(E.MESSAGE_DELETE, payload, **_audience(access))
        if row.author_id != user_id and access.guild_id is not None:
            await tx.audit(guild_id=access.guild_id, user_id=user_id, action_type=A.MESSAGE_DELETE, target_id=row.author_id,
                           options={"channel_id": str(channel_id), "count": "1"}, reason=reason)
    await platform.delete_objects(list(keys))


async def _after_delete(tx: Tx, channel_id: int, count: int) -> None:
    await tx.conn.execute(text(
        "UPDATE channels SET message_count = greatest(message_count - :n, 0), "
        "last_message_id = (SELECT max(id) FROM messages WHERE channel_id = :cid) WHERE id = :cid"), {"n": count, "cid": channel_id})


async def do_bulk_delete(platform: Platform, user_id: int, channel_id: int, message_ids: list[int], reason: str | None) -> None:
    """2-100 messages younger than two weeks (Discord's rule), all or nothing."""
    ids = list(dict.fromkeys(message_ids))
    if not 2 <= len(ids) <= 100:
        raise TooManyMessagesToDelete()
    cutoff = snowflake_from_time(datetime.now(timezone.utc) - timedelta(days=14))
    if any(i < cutoff for i in ids):
        raise InvalidFormBody.field("messages", "MESSAGE_BULK_DELETE_TOO_OLD", "You can only bulk delete messages that are under 14 days old.")
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        if access.channel.type in (DM, GROUP_DM):
            raise MissingPermissions()
        access.require(int(P.MANAGE_MESSAGES))
        keys = (await tx.conn.execute(text("SELECT storage_key FROM attachments WHERE message_id = ANY(:ids) AND channel_id = :cid"),
                                      {"ids": ids, "cid": channel_id})).scalars().all()
        deleted = (await tx.conn.execute(text("DELETE FROM messages WHERE id = ANY(:ids) AND channel_id = :cid RETURNING id"),
                                         {"ids": ids, "cid": channel_id})).scalars().all()
        if not deleted:
            raise UnknownMessage()
        await _after_delete(tx, channel_id, len(deleted))
        await tx.emit(E.MESSAGE_DELETE_BULK, {"ids": [str(i) for i in sorted(deleted)], "channel_id": str(channel_id),
                                              "guild_id": str(access.guild_id)}, **_audience(access))
        await tx.audit(guild_id=access.guild_id, user_id=user_id, action_type=A.MESSAGE_BULK_DELETE, target_id=channel_id,
                       options={"count": str(len(deleted))}, reason=reason)
    await platform.delete_objects(list(keys))


# --- pins ----------------------------------------------------------------------------------

async def do_pin(platform: Platform, user_id: int, channel_id: int, message_id: int, *, pin: bool, reason: str | None) -> None:
    async with platform.transaction() as tx:
        access = await channel_access(tx.conn, user_id, channel_id)
        if not (access.can(int(P.MANAGE_MESSAGES)) or access.can(int(P.PIN_MESSAGES))):
            raise MissingPermissions()
        row = await _locked_message(tx, channel_id, message_id)
        if pin and row.pinned_at is None:
            pinned = (await tx.conn.execute(text("SELECT count(*) FROM messages WHERE channel_id = :cid AND pinned_at IS NOT NULL"),
                                            {"cid": channel_id})).scalar_one()
            if pinned >= 50:
                raise MaxPins()
        if (row.pinned_at is not None) == pin:
            return
        await tx.conn.execute(text("UPDATE messages SET pinned_at = CASE WHEN :pin THEN now() END WHERE id = :id"), {"pin": pin, "id": message_id})
        last = (await tx.conn.execute(text(
            "UPDATE channels SET last_pin_timestamp = (SELECT max(pinned_at) FROM messages WHERE channel_id = :cid) "
            "WHERE id = :cid RETURNING last_pin_timestamp"), {"cid": channel_id})).scalar()
        obj = (await load_messages(tx.conn, "m.id = :mid", {"mid": message_id}, me=user_id, base_url=platform.settings.base_url, limit=1))[0]
        await tx.emit(E.MESSAGE_UPDATE, obj, **_audience(access))
        payload = {"channel_id": str(channel_id), "last_pin_timestamp": shapes.iso(last)}
        if access.guild_id is not None:
            payload["guild_id"] = str(access.guild_id)
        await tx.emit(E.CHANNEL_PINS_UPDATE, payload, **_audience(access))
        if access.guild_id is not None:
            await tx.audit(guild_id=access.guild_id, user_id=user_id, action_type=A.MESSAGE_PIN if pin else A.MESSAGE_UNPIN,
                           target_id=row.author_id, options={"channel_id": str(channel_id), "message_id": str(message_id)}, reason=reason)


async def get_pins(platform: Platform, user_id: int, channel_id: int) -> list[dict[str, Any]]:
    async with platform.read() as conn:
        access = await channel_access(conn, user_id, channel_id)
        check_readable(access)
        rows = (await conn.execute(text("SELECT id FROM messages WHERE channel_id = :cid AND pinned_at IS NOT NULL ORDER BY pinned_at DESC"),
                                   {"cid": channel_id})).scalars().all()
        if not rows:
            return []
        msgs = await load_messages(conn, "m.id = ANY(:ids)", {"ids": list(rows)}, me=user_id, base_url=platform.settings.base_url, limit=50)
    order = {str(i): n for n, i in enumerate(rows)}
    return sorted(msgs, key=lambda m: order[m["id"]])
