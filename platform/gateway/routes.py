"""The gateway's HTTP side: the WebSocket at /gateway, Discord's discovery routes, and the
typing indicator (which travels on the ephemeral stream, not the event log)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket

from ..actions.access import DM, GROUP_DM, channel_access
from ..actions.messages import check_sendable
from ..actions.reactions import member_of
from ..api.deps import Me, PlatformDep, Snowflake
from .connection import Connection

router = APIRouter()
TYPING_THROTTLE_SECONDS = 5


def gateway_url(request: Request | WebSocket) -> str:
    base = request.app.state.platform.settings.base_url
    return ("wss://" + base[len("https://"):] if base.startswith("https://") else "ws://" + base.removeprefix("http://")) + "/gateway"


@router.websocket("/gateway")
async def gateway(ws: WebSocket) -> None:
    await Connection(ws.app.state.hub, ws, gateway_url(ws)).run()


@router.get("/api/v10/gateway")
async def get_gateway(request: Request) -> dict[str, Any]:
    return {"url": gateway_url(request)}


@router.get("/api/v10/gateway/bot")
async def get_gateway_bot(request: Request, me: Me) -> dict[str, Any]:
    return {"url": gateway_url(request), "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 86_400_000, "max_concurrency": 1}}


@router.post("/api/v10/channels/{channel_id}/typing", status_code=204)
async def typing(channel_id: Snowflake, request: Request, me: Me, platform: PlatformDep) -> Response:
    """TYPING_START for the channel's viewers; repeated calls within a few seconds are free."""
    async with platform.read() as conn:
        access = await channel_access(conn, me.id, channel_id)
    check_sendable(access)
    hub = request.app.state.hub
    fresh = await platform.redis.set(f"{platform.settings.redis_prefix}typing:{me.id}:{channel_id}", b"1",
                                     ex=TYPING_THROTTLE_SECONDS, nx=True)
    if fresh:
        ch = access.channel
        data: dict[str, Any] = {"channel_id": str(channel_id), "user_id": str(me.id), "timestamp": int(time.time())}
        env: dict[str, Any] = {"type": "TYPING_START", "channel_id": str(channel_id), "data": data}
        if ch.type in (DM, GROUP_DM):
            env["user_ids"] = [str(u) for u in ch.recipients]
        else:
            data["guild_id"] = str(ch.guild_id)
            env["guild_id"] = str(ch.guild_id)
            async with platform.read() as conn:  # in a guild, Discord's TYPING_START carries the member
                member = await member_of(conn, ch.guild_id, me.id)
            if member is not None:
                data["member"] = member
        await hub.publish_ephemeral(env)
    return Response(status_code=204)
