"""Guilds, members, roles, invites and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from ...actions import audit, channels, guilds, search
from ...core.errors import UnknownInvite
from ...core.permissions import MAX_PERMISSION_VALUE
from ...core.snowflake import MAX_SNOWFLAKE
from ..bodies import Body
from ..deps import Me, OptSnowflakeQuery, PlatformDep, Reason, Snowflake, SnowflakeInt, SnowflakeListQuery, as_body
from ..responses import FastJSONResponse
from ..strictjson import StrictJSONRoute
from .channels import OverwriteBody

router = APIRouter(prefix="/api/v10", route_class=StrictJSONRoute)


class GuildBody(Body):
    name: str = Field(min_length=2, max_length=100)
    description: str | None = Field(default=None, max_length=300)


class ModifyGuildBody(Body):
    name: str | None = Field(default=None, min_length=2, max_length=100)
    description: str | None = Field(default=None, max_length=300)
    system_channel_id: SnowflakeInt | None = None


class ChannelBody(Body):
    name: str = Field(min_length=1, max_length=100)
    type: Literal[0, 4, 5] = 0
    topic: str | None = Field(default=None, max_length=1024)
    position: int = Field(default=0, ge=0, le=10_000)
    parent_id: SnowflakeInt | None = None
    nsfw: bool = False
    rate_limit_per_user: int = Field(default=0, ge=0, le=21600)
    permission_overwrites: list[OverwriteBody] = Field(default_factory=list, max_length=100)


class RoleBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    permissions: int | None = Field(default=None, ge=0, le=MAX_PERMISSION_VALUE)
    color: int | None = Field(default=None, ge=0, le=0xFFFFFF)
    hoist: bool | None = None
    mentionable: bool | None = None
    position: int | None = Field(default=None, ge=1, le=250)


class MemberBody(Body):
    nick: str | None = Field(default=None, max_length=32)
    roles: list[SnowflakeInt] | None = Field(default=None, max_length=250)


class MyMemberBody(Body):
    nick: str | None = Field(default=None, max_length=32)


def _role_values(body: RoleBody) -> dict[str, Any]:
    values = as_body(body)
    return {k: v for k, v in values.items() if v is not None}


@router.post("/guilds", status_code=201)
async def create_guild(body: GuildBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await guilds.do_create_guild(platform, me.id, name=body.name, description=body.description)


@router.get("/guilds/{guild_id}")
async def get_guild(guild_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await guilds.get_guild(platform, me.id, guild_id)


@router.patch("/guilds/{guild_id}")
async def modify_guild(guild_id: Snowflake, body: ModifyGuildBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    values = as_body(body)
    if values.get("name", "") is None:
        values.pop("name")
    return await guilds.do_modify_guild(platform, me.id, guild_id, values, reason)


@router.delete("/guilds/{guild_id}", status_code=204)
async def delete_guild(guild_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await guilds.do_delete_guild(platform, me.id, guild_id)
    return Response(status_code=204)


@router.get("/guilds/{guild_id}/channels")
async def guild_channels(guild_id: Snowflake, me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await channels.list_guild_channels(platform, me.id, guild_id)


@router.post("/guilds/{guild_id}/channels", status_code=201)
async def create_channel(guild_id: Snowflake, body: ChannelBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    values = as_body(body)
    values["type"] = body.type
    if "permission_overwrites" in values:
        values["permission_overwrites"] = [o.model_dump() for o in body.permission_overwrites]
    return await channels.do_create_guild_channel(platform, me.id, guild_id, values, reason)


@router.get("/guilds/{guild_id}/threads/active")
async def active_threads(guild_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await channels.list_active_threads(platform, me.id, guild_id)


@router.get("/guilds/{guild_id}/members")
async def list_members(guild_id: Snowflake, me: Me, platform: PlatformDep, limit: int = Query(1, ge=1, le=1000),
                       after: int = Query(0, ge=0, le=MAX_SNOWFLAKE)) -> list[dict[str, Any]]:
    return await guilds.list_members(platform, me.id, guild_id, after=after, limit=limit)


@router.patch("/guilds/{guild_id}/members/@me")
async def modify_my_member(guild_id: Snowflake, body: MyMemberBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    return await guilds.do_modify_member(platform, me.id, guild_id, me.id, as_body(body), reason)


@router.get("/guilds/{guild_id}/members/{user_id}")
async def get_member(guild_id: Snowflake, user_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await guilds.get_member(platform, me.id, guild_id, user_id)


@router.put("/guilds/{guild_id}/members/{user_id}")
async def add_member(guild_id: Snowflake, user_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    obj = await guilds.do_add_member(platform, me.id, guild_id, user_id)
    if obj is None:
        return Response(status_code=204)
    return FastJSONResponse(obj, status_code=201)


@router.patch("/guilds/{guild_id}/members/{user_id}")
async def modify_member(guild_id: Snowflake, user_id: Snowflake, body: MemberBody, me: Me, platform: PlatformDep,
                        reason: Reason) -> dict[str, Any]:
    values = as_body(body)
    if values.get("roles", []) is None:
        values["roles"] = []
    return await guilds.do_modify_member(platform, me.id, guild_id, user_id, values, reason)


@router.delete("/guilds/{guild_id}/members/{user_id}", status_code=204)
async def kick_member(guild_id: Snowflake, user_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await guilds.do_remove_member(platform, me.id, guild_id, user_id, reason)
    return Response(status_code=204)


@router.put("/guilds/{guild_id}/members/{user_id}/roles/{role_id}", status_code=204)
async def add_member_role(guild_id: Snowflake, user_id: Snowflake, role_id: Snowflake, me: Me, platform: PlatformDep,
                          reason: Reason) -> Response:
    await guilds.do_set_member_role(platform, me.id, guild_id, user_id, role_id, add=True, reason=reason)
    return Response(status_code=204)


@router.delete("/guilds/{guild_id}/members/{user_id}/roles/{role_id}", status_code=204)
async def remove_member_role(guild_id: Snowflake, user_id: Snowflake, role_id: Snowflake, me: Me, platform: PlatformDep,
                             reason: Reason) -> Response:
    await guilds.do_set_member_role(platform, me.id, guild_id, user_id, role_id, add=False, reason=reason)
    return Response(status_code=204)


@router.get("/guilds/{guild_id}/roles")
async def list_roles(guild_id: Snowflake, me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await guilds.list_roles(platform, me.id, guild_id)


@router.post("/guilds/{guild_id}/roles")
async def create_role(guild_id: Snowflake, body: RoleBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    return await guilds.do_create_role(platform, me.id, guild_id, _role_values(body), reason)


@router.patch("/guilds/{guild_id}/roles/{role_id}")
async def modify_role(guild_id: Snowflake, role_id: Snowflake, body: RoleBody, me: Me, platform: PlatformDep,
                      reason: Reason) -> dict[str, Any]:
    return await guilds.do_modify_role(platform, me.id, guild_id, role_id, _role_values(body), reason)


@router.delete("/guilds/{guild_id}/roles/{role_id}", status_code=204)
async def delete_role(guild_id: Snowflake, role_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await guilds.do_delete_role(platform, me.id, guild_id, role_id, reason)
    return Response(status_code=204)


@router.get("/guilds/{guild_id}/audit-logs")
async def audit_logs(guild_id: Snowflake, me: Me, platform: PlatformDep, user_id: OptSnowflakeQuery = None,
                     action_type: int | None = Query(None, ge=0, le=1000), before: OptSnowflakeQuery = None,
                     after: OptSnowflakeQuery = None, limit: int = Query(50, ge=1, le=100)) -> dict[str, Any]:
    return await audit.get_audit_log(platform, me.id, guild_id, filter_user=user_id, action_type=action_type, before=before,
                                     after=after, limit=limit)


@router.get("/guilds/{guild_id}/messages/search")
async def search_guild(guild_id: Snowflake, me: Me, platform: PlatformDep,
                       content: str | None = Query(None, max_length=1024),
                       author_id: SnowflakeListQuery = [], channel_id: Annotated[list[SnowflakeInt], Query(max_length=500)] = [],
                       mentions: SnowflakeListQuery = [],
                       has: list[Literal["file", "image", "link", "embed"]] = Query([], max_length=4),
                       pinned: bool | None = None, min_id: OptSnowflakeQuery = None, max_id: OptSnowflakeQuery = None,
                       sort_order: Literal["asc", "desc"] = "desc", offset: int = Query(0, ge=0, le=9975),
                       limit: int = Query(25, ge=1, le=25)) -> dict[str, Any]:
    q = search.SearchQuery(content=content, author_ids=author_id, channel_ids=channel_id, mentions=mentions,
                           has=list(has), pinned=pinned, min_id=min_id, max_id=max_id, sort_order=sort_order, offset=offset, limit=limit)
    return await search.search_guild(platform, me.id, guild_id, q)


@router.get("/invites/{code}")
async def get_invite(code: str, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await guilds.get_invite(platform, _code(code))


@router.post("/invites/{code}")
async def accept_invite(code: str, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await guilds.do_accept_invite(platform, me.id, _code(code))


def _code(code: str) -> str:
    if not 1 <= len(code) <= 16 or not code.replace("-", "").replace("_", "").isalnum():
        raise UnknownInvite()
    return code
