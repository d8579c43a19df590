"""Accounts, tokens, bots, and the caller's own lists (guilds, DMs, read states)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field

from ...actions import channels, guilds, readstates, users
from ...actions.shapes import user as user_shape
from ...core.errors import MissingAccess, MissingPermissions
from ..bodies import Body
from ..deps import AnonLimited, Me, PlatformDep, Snowflake, SnowflakeInt, as_body
from ..strictjson import StrictJSONRoute

router = APIRouter(prefix="/api/v10", route_class=StrictJSONRoute)


# The rule `users.check_username` enforces (with its own error code), described in the schema.
USERNAME = {"pattern": users.USERNAME_RE.pattern}
PASSWORD = {"minLength": 8, "maxLength": 128}  # users.check_password


class RegisterBody(Body):
    username: str = Field(max_length=64, json_schema_extra=USERNAME)
    password: str = Field(max_length=256, json_schema_extra=PASSWORD)
    email: str | None = Field(default=None, max_length=254)
    global_name: str | None = Field(default=None, min_length=1, max_length=32)


class LoginBody(Body):
    login: str = Field(max_length=254)
    password: str = Field(max_length=256)


class BotBody(Body):
    username: str = Field(max_length=64, json_schema_extra=USERNAME)
    global_name: str | None = Field(default=None, min_length=1, max_length=32)
    bio: str | None = Field(default=None, max_length=190)


class ModifyMeBody(Body):
    username: str | None = Field(default=None, max_length=64, json_schema_extra=USERNAME)
    global_name: str | None = Field(default=None, max_length=64, json_schema_extra={"minLength": 1, "maxLength": 32})  # do_modify_me's rule
    bio: str | None = Field(default=None, max_length=400)


class OpenDMBody(Body):
    recipient_id: SnowflakeInt | None = None
    recipients: list[SnowflakeInt] | None = Field(default=None, max_length=10)
    name: str | None = Field(default=None, max_length=100)


@router.post("/auth/register", status_code=201, dependencies=[AnonLimited])
async def register(body: RegisterBody, request: Request, platform: PlatformDep) -> dict[str, Any]:
    row, token = await users.do_register(platform, username=body.username, password=body.password, email=body.email,
                                         global_name=body.global_name, ip=request.client.host if request.client else None)
    return {"token": token, "user": user_shape(row)}


@router.post("/auth/login", dependencies=[AnonLimited])
async def login(body: LoginBody, request: Request, platform: PlatformDep) -> dict[str, Any]:
    row, token = await users.do_login(platform, login=body.login, password=body.password,
                                      ip=request.client.host if request.client else None)
    return {"token": token, "user_id": str(row.id), "user": user_shape(row)}


@router.post("/auth/logout", status_code=204)
async def logout(me: Me, platform: PlatformDep) -> Response:
    await users.do_revoke_token(platform, me)
    return Response(status_code=204)


@router.get("/users/@me")
async def get_me(me: Me, platform: PlatformDep) -> dict[str, Any]:
    row = await users.get_user(platform, me.id)
    return {**user_shape(row), "bio": row.bio, "verified": True, "mfa_enabled": False, "locale": "en-US",
            "email": row.email, "townsquare_admin": row.is_admin}


@router.patch("/users/@me")
async def modify_me(body: ModifyMeBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    row = await users.do_modify_me(platform, me, as_body(body))
    return {**user_shape(row), "bio": row.bio}


@router.get("/users/@me/guilds")
async def my_guilds(me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await guilds.list_my_guilds(platform, me.id)


@router.delete("/users/@me/guilds/{guild_id}", status_code=204)
async def leave_guild(guild_id: Snowflake, me: Me, platform: PlatformDep) -> Response:
    await guilds.do_leave_guild(platform, me.id, guild_id)
    return Response(status_code=204)


@router.get("/users/@me/channels")
async def my_dms(me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await channels.list_dms(platform, me.id)


@router.post("/users/@me/channels")
async def open_dm(body: OpenDMBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    ids = [body.recipient_id] if body.recipient_id is not None else list(body.recipients or [])
    return await channels.do_open_dm(platform, me.id, ids, body.name)


@router.get("/users/@me/read-states")
async def my_read_states(me: Me, platform: PlatformDep) -> dict[str, Any]:
    return {"version": 0, "partial": False, "entries": await readstates.read_states(platform, me.id)}


@router.get("/oauth2/applications/@me")
@router.get("/applications/@me")
async def my_application(me: Me, platform: PlatformDep) -> dict[str, Any]:
    """A bot's application (Discord libraries ask at login). In Townsquare every bot is its
    own application: same id, owned by whoever created the bot."""
    if not me.bot:
        raise MissingAccess()
    row = await users.get_user(platform, me.id)
    owner = user_shape(await users.get_user(platform, row.owner_id)) if row.owner_id else user_shape(row)
    return {"id": str(row.id), "name": row.username, "description": row.bio or "", "icon": None, "bot_public": False,
            "bot_require_code_grant": False, "owner": owner, "team": None, "verify_key": "", "flags": 0,
            "summary": "", "rpc_origins": [], "bot": user_shape(row)}


@router.get("/users/{user_id}")
async def get_user(user_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return user_shape(await users.get_user(platform, user_id))


@router.post("/townsquare/bots", status_code=201)
async def create_bot(body: BotBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """Any person may create bots (Discord's applications); the token is shown once."""
    if me.bot:
        raise MissingPermissions()
    row, token = await users.do_create_bot(platform, owner_id=me.id, username=body.username, global_name=body.global_name, bio=body.bio)
    return {"user": user_shape(row), "token": token}


@router.get("/townsquare/bots")
async def list_bots(me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return [user_shape(r) for r in await users.list_bots(platform, me)]


@router.post("/townsquare/bots/{bot_id}/reset-token")
async def reset_bot_token(bot_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return {"token": await users.do_reset_bot_token(platform, me, bot_id)}
