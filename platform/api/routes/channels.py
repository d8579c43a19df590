"""Channels, permission overwrites, invites and threads."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field

from ...actions import channels, guilds
from ...actions.access import PRIVATE_THREAD, PUBLIC_THREAD, channel_access
from ...core.permissions import MAX_PERMISSION_VALUE
from ..bodies import Body
from ..deps import Me, PlatformDep, Reason, Snowflake, SnowflakeInt, as_body
from ..strictjson import StrictJSONRoute

router = APIRouter(prefix="/api/v10", route_class=StrictJSONRoute)


class OverwriteBody(Body):
    id: SnowflakeInt
    type: Literal[0, 1]
    allow: int = Field(default=0, ge=0, le=MAX_PERMISSION_VALUE)
    deny: int = Field(default=0, ge=0, le=MAX_PERMISSION_VALUE)


class ModifyChannelBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    topic: str | None = Field(default=None, max_length=1024)
    position: int | None = Field(default=None, ge=0, le=10_000)
    parent_id: SnowflakeInt | None = None
    nsfw: bool | None = None
    rate_limit_per_user: int | None = Field(default=None, ge=0, le=21600)
    permission_overwrites: list[OverwriteBody] | None = Field(default=None, max_length=100)
    archived: bool | None = None
    locked: bool | None = None
    invitable: bool | None = None
    auto_archive_duration: Literal[60, 1440, 4320, 10080] | None = None


class PutOverwriteBody(Body):
    type: Literal[0, 1]
    allow: int = Field(default=0, ge=0, le=MAX_PERMISSION_VALUE)
    deny: int = Field(default=0, ge=0, le=MAX_PERMISSION_VALUE)


class InviteBody(Body):
    max_age: int = Field(default=86400, ge=0, le=604800)
    max_uses: int = Field(default=0, ge=0, le=100)


class ThreadBody(Body):
    name: str = Field(min_length=1, max_length=100)
    type: Literal[11, 12] = PRIVATE_THREAD
    auto_archive_duration: Literal[60, 1440, 4320, 10080] = 4320
    invitable: bool = True


class MessageThreadBody(Body):
    name: str = Field(min_length=1, max_length=100)
    auto_archive_duration: Literal[60, 1440, 4320, 10080] = 4320


@router.get("/channels/{channel_id}")
async def get_channel(channel_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await channels.get_channel(platform, me.id, channel_id)


@router.patch("/channels/{channel_id}")
async def modify_channel(channel_id: Snowflake, body: ModifyChannelBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    values = as_body(body)
    if body.permission_overwrites is not None:
        values["permission_overwrites"] = [o.model_dump() for o in body.permission_overwrites]
    for key in ("name", "position", "nsfw", "rate_limit_per_user", "archived", "locked", "invitable", "auto_archive_duration"):
        if key in values and values[key] is None:
            values.pop(key)
    return await channels.do_modify_channel(platform, me.id, channel_id, values, reason)


@router.delete("/channels/{channel_id}")
async def delete_channel(channel_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    return await channels.do_delete_channel(platform, me.id, channel_id, reason)


@router.put("/channels/{channel_id}/permissions/{overwrite_id}", status_code=204)
async def put_overwrite(channel_id: Snowflake, overwrite_id: Snowflake, body: PutOverwriteBody, me: Me, platform: PlatformDep,
                        reason: Reason) -> Response:
    await channels.do_set_overwrite(platform, me.id, channel_id, overwrite_id, type=body.type, allow=body.allow, deny=body.deny,
                                    reason=reason)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/permissions/{overwrite_id}", status_code=204)
async def delete_overwrite(channel_id: Snowflake, overwrite_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await channels.do_delete_overwrite(platform, me.id, channel_id, overwrite_id, reason)
    return Response(status_code=204)


@router.post("/channels/{channel_id}/invites")
async def create_invite(channel_id: Snowflake, body: InviteBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    async with platform.read() as conn:
        access = await channel_access(conn, me.id, channel_id)
    return await guilds.do_create_invite(platform, me, access, max_age=body.max_age, max_uses=body.max_uses, reason=reason)


@router.post("/channels/{channel_id}/threads", status_code=201)
async def start_thread(channel_id: Snowflake, body: ThreadBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    return await channels.do_create_thread(platform, me.id, channel_id, name=body.name, type=body.type, message_id=None,
                                           auto_archive_duration=body.auto_archive_duration, invitable=body.invitable, reason=reason)


@router.post("/channels/{channel_id}/messages/{message_id}/threads", status_code=201)
async def start_thread_from_message(channel_id: Snowflake, message_id: Snowflake, body: MessageThreadBody, me: Me,
                                    platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    return await channels.do_create_thread(platform, me.id, channel_id, name=body.name, type=PUBLIC_THREAD, message_id=message_id,
                                           auto_archive_duration=body.auto_archive_duration, invitable=True, reason=reason)


@router.get("/channels/{channel_id}/thread-members")
async def thread_members(channel_id: Snowflake, me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await channels.list_thread_members(platform, me.id, channel_id)


@router.put("/channels/{channel_id}/thread-members/@me", status_code=204)
async def join_thread(channel_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await channels.do_join_thread(platform, me.id, channel_id)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/thread-members/@me", status_code=204)
async def leave_thread(channel_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await channels.do_leave_thread(platform, me.id, channel_id)
    return Response(status_code=204)


@router.put("/channels/{channel_id}/thread-members/{user_id}", status_code=204)
async def add_thread_member(channel_id: Snowflake, user_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await channels.do_join_thread(platform, me.id, channel_id, user_id)
    return Response(status_code=204)


@router.delete("/channels/{channel_id}/thread-members/{user_id}", status_code=204)
async def remove_thread_member(channel_id: Snowflake, user_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await channels.do_leave_thread(platform, me.id, channel_id, user_id)
    return Response(status_code=204)
