"""The payloads a session gets when it starts: READY and one GUILD_CREATE per guild.

GUILD_CREATE follows Discord's rules for which members it carries (gateway-events.mdx, Guild
Create and Request Guild Members):
- without the GUILD_PRESENCES intent: only the connecting user's own member (and members in
  voice channels, which Townsquare has none of); no presences;
- with it, a guild of more than IDENTIFY's `large_threshold` members (50 to 250, default 50) is
  `large`: only members who are online, have a role or a nickname; presences of those online;
- with it, a smaller guild: every member, and the presences of those not offline.
The rest comes through Request Guild Members (op 8, `request_members`), in chunks of 1,000.

A reconnect storm (every client of a restarted server identifying at once) must be cheap: the
part of GUILD_CREATE that is the same for every member (the guild, its roles, channels and
active threads) is built once per guild and reused until an event of that guild changes it
(GuildState.note_event, called by the hub in stream order); per session remain the channel
filter (in memory, GuildState), the member's own row (read with its guild list) and the
serialisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..actions import shapes
from ..actions.access import THREAD_TYPES
from ..actions.channels import list_dms
from ..actions.guilds import guild_object
from ..db.raw import fetch_rows
from .presence import presences_of
from .protocol import GUILD_MEMBERS, GUILD_PRESENCES

if TYPE_CHECKING:
    from .guildstate import GuildState
    from .hub import GatewayHub
    from .session import Session

DEFAULT_LARGE_THRESHOLD = 50  # Discord's default for IDENTIFY's large_threshold
MIN_LARGE_THRESHOLD, MAX_LARGE_THRESHOLD = 50, 250
CHUNK_SIZE = 1000  # members per GUILD_MEMBERS_CHUNK
QUERY_LIMIT = 100  # most members a prefix query or a user_ids request returns
NONCE_MAX_BYTES = 32

MEMBER_ROWS = text("SELECT m.*, to_jsonb(u) AS user FROM members m JOIN users u ON u.id = m.user_id")
MY_MEMBERS = text(f"{MEMBER_ROWS.text} WHERE m.user_id = :u")

def large_threshold(value: Any) -> int:
    """IDENTIFY's `large_threshold`, kept within Discord's range (absent or invalid: 50)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return DEFAULT_LARGE_THRESHOLD
    return max(MIN_LARGE_THRESHOLD, min(MAX_LARGE_THRESHOLD, value))


@dataclass
class SharedGuild:
    """What every member's GUILD_CREATE of a guild has in common, as of the guild's event count
    `key` (GuildState.touched). Channel and thread objects are built once and shared."""

    key: int
    guild: dict[str, Any]
    channels: list[tuple[int, dict[str, Any]]]  # (id, object), in position order
    threads: list[tuple[int, dict[str, Any]]]  # active (not archived) threads
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)  # channels (not threads) by id


async def shared_guild(hub: GatewayHub, state: GuildState) -> SharedGuild:
    """The guild's shared part, built at most once at a time (a storm of sessions waits for one
    build instead of each running the same queries)."""
    shared: SharedGuild | None = state.payload
    if shared is not None and shared.key == state.touched:
        return shared
    async with state.payload_lock:
        shared = state.payload
        if shared is not None and shared.key == state.touched:
            return shared
        key = state.touched  # before reading: an event that lands meanwhile makes the next use rebuild
        async with hub.platform.read() as conn:
            row = (await conn.execute(text("SELECT * FROM guilds WHERE id = :g"), {"g": state.id})).one()
            obj = await guild_object(conn, row)
            rows = (await conn.execute(text("SELECT * FROM channels WHERE guild_id = :g ORDER BY position, id"), {"g": state.id})).all()
        obj.setdefault("application_id", None)  # a guild no bot created (hikari needs the key)
        channels = [(c.id, shapes.channel(c)) for c in rows if c.type not in THREAD_TYPES]
        threads = [(c.id, shapes.channel(c)) for c in rows
                   if c.type in THREAD_TYPES and not (c.thread_metadata or {}).get("archived")]
        shared = SharedGuild(key, obj, channels, threads, {str(cid): c for cid, c in channels})
        state.payload = shared
        return shared


async def my_members(hub: GatewayHub, user_id: int) -> dict[int, Any]:
    """The user's member rows (with their user), by guild: its guild list and its own member
    in each GUILD_CREATE, in one query."""
    async with hub.platform.read() as conn:
        return {r.guild_id: r for r in await fetch_rows(conn, MY_MEMBERS.text, {"u": user_id})}


async def guild_create(hub: GatewayHub, s: Session, gid: int, me: Any = None) -> dict[str, Any]:
    """One GUILD_CREATE for session `s`; `me` is the user's member row in the guild (read when
    not given)."""
    state = hub.guilds[gid]
    shared = await shared_guild(hub, state)
    uid = s.user_id
    if me is None:
        async with hub.platform.read() as conn:
            me = (await conn.execute(text(f"{MEMBER_ROWS.text} WHERE m.guild_id = :g AND m.user_id = :u"),
                                     {"g": gid, "u": uid})).first()
    count = len(state.member_roles)
    large = count > s.large_threshold
    if s.intents & GUILD_PRESENCES:
        members, presences = await _members_with_presences(hub, gid, state, uid, large)
    else:
        members, presences = ([shapes.member(me, shapes.user_json(me.user))] if me is not None else []), []
    obj = dict(shared.guild)
    obj.update(
        channels=[c for cid, c in shared.channels if state.can_view(uid, cid)],
        threads=[c for cid, c in shared.threads if state.can_view(uid, cid)],
        members=members,
        presences=presences,
        member_count=count,
        large=large,
        joined_at=shapes.iso(me.joined_at) if me is not None else None,
        unavailable=False,
        voice_states=[], stage_instances=[], guild_scheduled_events=[], soundboard_sounds=[],
    )
    return obj


async def _members_with_presences(hub: GatewayHub, gid: int, state: GuildState, uid: int,
                                  large: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    presences = await presences_of(hub, list(state.member_roles))
    if large:  # online, or with a role or a nickname (and oneself)
        online = [int(p["user"]["id"]) for p in presences] + [uid]
        where, params = ("WHERE m.guild_id = :g AND (m.user_id = ANY(:ids) OR m.nick IS NOT NULL "
                         "OR cardinality(array_remove(m.roles, m.guild_id)) > 0)"), {"g": gid, "ids": online}
    else:
        where, params = "WHERE m.guild_id = :g", {"g": gid}
    async with hub.platform.read() as conn:
        rows = (await conn.execute(text(f"{MEMBER_ROWS.text} {where} ORDER BY m.user_id"), params)).all()
    return [shapes.member(r, shapes.user_json(r.user)) for r in rows], presences


async def ready_payload(hub: GatewayHub, s: Session, user: dict[str, Any], base_ws_url: str) -> dict[str, Any]:
    # a bot's READY has no DM channels (Discord sends it an empty list: they come with their events)
    private = [] if s.bot else await list_dms(hub.platform, s.user_id)
    return {
        "v": 10,
        "user": {**user, "verified": True, "mfa_enabled": False, "flags": 0},
        "guilds": [{"id": str(g), "unavailable": True} for g in sorted(s.guild_ids)],
        "session_id": s.id,
        "resume_gateway_url": base_ws_url,
        "shard": [0, 1],
        "application": {"id": str(s.user_id), "flags": 0},
        "private_channels": private,
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "session_type": "normal",
        "auth_session_id_hash": None,
        "_trace": ["townsquare"],
    }


# --- Request Guild Members (op 8) -----------------------------------------------------------------

class BadRequest(ValueError):
    """An op 8 payload the gateway cannot read (the connection closes with 4002)."""


def _snowflake(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest("not a snowflake")
    try:
        out = int(value)
    except ValueError:
        raise BadRequest("not a snowflake") from None
    if not 0 < out < 1 << 63:
        raise BadRequest("not a snowflake")
    return out


async def request_members(hub: GatewayHub, s: Session, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The GUILD_MEMBERS_CHUNK payloads answering one Request Guild Members, as Discord does:
    - `user_ids` (one or a list, at most 100): those members; the ids that are not, in `not_found`;
    - `query` (a username or nickname prefix, case-insensitive) with `limit` (at most 100): the
      first members matching; an empty query with limit 0 (or any limit) asks for the whole list,
      which needs the GUILD_MEMBERS intent (without it: an empty answer);
    - `presences` (only with GUILD_PRESENCES): the presences of the members returned;
    - `nonce` (a string of at most 32 bytes, else ignored): repeated in every chunk.
    Up to 1,000 members per chunk, at least one chunk (possibly empty), so that a library
    waiting for `chunk_index == chunk_count - 1` always finishes. A guild the session is not in
    gets no answer (as on Discord, where it is not the session's guild)."""
    gid = _snowflake(d.get("guild_id") if not isinstance(d.get("guild_id"), list) else (d["guild_id"] or [None])[0])
    nonce = d.get("nonce") if isinstance(d.get("nonce"), str) and len(d["nonce"].encode()) <= NONCE_MAX_BYTES else None
    presences = d.get("presences") is True and bool(s.intents & GUILD_PRESENCES)
    raw_ids, query, limit = d.get("user_ids"), d.get("query"), d.get("limit", 0)
    if raw_ids is None and query is None:
        raise BadRequest("query or user_ids is required")
    if gid not in s.guild_ids:
        return []
    not_found: list[str] = []
    params: dict[str, Any] = {"g": gid}
    if raw_ids is not None:
        ids = [_snowflake(u) for u in (raw_ids if isinstance(raw_ids, list) else [raw_ids])][:QUERY_LIMIT]
        where, params["ids"] = "AND m.user_id = ANY(:ids)", ids
        cap: int | None = None
    else:
        if not isinstance(query, str) or not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise BadRequest("query must be a string and limit a non-negative integer")
        if query == "":
            if not s.intents & GUILD_MEMBERS:
                ids, where, cap = [], "AND false", None
            else:
                where, cap = "", limit or None
        else:
            where = "AND (left(lower(u.username), :n) = :q OR left(lower(coalesce(m.nick, '')), :n) = :q)"
            params.update(n=len(query), q=query.lower())
            cap = min(limit or QUERY_LIMIT, QUERY_LIMIT)
        ids = []
    sql = f"{MEMBER_ROWS.text} WHERE m.guild_id = :g {where} ORDER BY m.user_id" + (" LIMIT :cap" if cap else "")
    if cap:
        params["cap"] = cap
    async with hub.platform.read() as conn:
        rows = (await conn.execute(text(sql), params)).all()
    if raw_ids is not None:
        found = {r.user_id for r in rows}
        not_found = [str(u) for u in ids if u not in found]
    members = [shapes.member(r, shapes.user_json(r.user)) for r in rows]
    chunks = [members[i:i + CHUNK_SIZE] for i in range(0, len(members), CHUNK_SIZE)] or [[]]
    out = []
    for index, part in enumerate(chunks):
        chunk: dict[str, Any] = {"guild_id": str(gid), "members": part, "chunk_index": index, "chunk_count": len(chunks)}
        if index == 0:
            chunk["not_found"] = not_found
        if presences:
            chunk["presences"] = await presences_of(hub, [int(m["user"]["id"]) for m in part])
        if nonce is not None:
            chunk["nonce"] = nonce
        out.append(chunk)
    return out

