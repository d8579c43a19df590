"""The payloads a session gets when it starts: READY and one GUILD_CREATE per guild."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ..actions import shapes
from ..actions.access import THREAD_TYPES
from ..actions.channels import list_dms
from ..actions.guilds import guild_object
from .presence import presences_of
from .protocol import GUILD_PRESENCES

if TYPE_CHECKING:
    from .hub import GatewayHub
    from .session import Session

MEMBERS_IN_GUILD_CREATE = 250  # Discord's default large_threshold


async def guild_create(hub: GatewayHub, conn: AsyncConnection, s: Session, gid: int) -> dict[str, Any]:
    state = hub.guilds[gid]
    row = (await conn.execute(text("SELECT * FROM guilds WHERE id = :g"), {"g": gid})).one()
    obj = await guild_object(conn, row)
    channels = (await conn.execute(text("SELECT * FROM channels WHERE guild_id = :g ORDER BY position, id"), {"g": gid})).all()
    visible = [c for c in channels if state.can_view(s.user_id, c.id)]
    members = (await conn.execute(text(
        "SELECT m.*, to_jsonb(u) AS user FROM members m JOIN users u ON u.id = m.user_id WHERE m.guild_id = :g "
        "ORDER BY (m.user_id = :me) DESC, m.user_id LIMIT :n"), {"g": gid, "me": s.user_id, "n": MEMBERS_IN_GUILD_CREATE})).all()
    count = len(state.member_roles)
    me = next((m for m in members if m.user_id == s.user_id), None)
    obj.update(
        channels=[shapes.channel(c) for c in visible if c.type not in THREAD_TYPES],
        threads=[shapes.channel(c) for c in visible if c.type in THREAD_TYPES and not (c.thread_metadata or {}).get("archived")],
        members=[shapes.member(m, shapes.user_json(m.user)) for m in members],
        presences=await presences_of(hub, [m.user_id for m in members]) if s.intents & GUILD_PRESENCES else [],
        member_count=count,
        large=count > MEMBERS_IN_GUILD_CREATE,
        joined_at=shapes.iso(me.joined_at) if me is not None else None,
        unavailable=False,
        voice_states=[], stage_instances=[], guild_scheduled_events=[], soundboard_sounds=[],
    )
    return obj


async def ready_payload(hub: GatewayHub, s: Session, user: dict[str, Any], base_ws_url: str) -> dict[str, Any]:
    private = await list_dms(hub.platform, s.user_id)
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
