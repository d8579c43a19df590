"""Townsquare's extensions: the agent registry, manual override and the brain's records
(`/api/v10/townsquare/...`, instance administrators only)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from ...actions import agents, messages
from ..deps import Me, OptSnowflakeQuery, PlatformDep, Reason, Snowflake, SnowflakeInt
from ..strictjson import StrictJSONRoute, check_text
from .messages import ReferenceBody, check_content

router = APIRouter(prefix="/api/v10/townsquare", route_class=StrictJSONRoute)

Limit = Query(default=50, ge=1, le=200)


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateAgentBody(Body):
    guild_id: SnowflakeInt
    persona: dict[str, Any]
    state: Literal["active", "paused", "muted"] = "active"


class ModifyAgentBody(Body):
    persona: dict[str, Any] | None = None  # partial: merged into the current persona
    state: Literal["active", "paused", "muted"] | None = None
    reason: str | None = Field(default=None, max_length=300)


class ReasonBody(Body):
    reason: str | None = Field(default=None, max_length=300)


class PostAsBody(Body):
    channel_id: SnowflakeInt
    content: str = Field(min_length=1, max_length=100_000)
    message_reference: ReferenceBody | None = None
    nonce: str | None = Field(default=None, max_length=25)


# --- societies ---


@router.get("/societies")
async def list_societies(me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await agents.list_societies(platform, me)


@router.get("/societies/{guild_id}")
async def get_society(guild_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await agents.get_society(platform, me, guild_id)


@router.post("/societies/{guild_id}/pause")
async def pause_society(guild_id: Snowflake, me: Me, platform: PlatformDep, body: ReasonBody | None = None) -> dict[str, Any]:
    return await agents.do_set_society_paused(platform, me, guild_id, True, _reason(body))


@router.post("/societies/{guild_id}/resume")
async def resume_society(guild_id: Snowflake, me: Me, platform: PlatformDep, body: ReasonBody | None = None) -> dict[str, Any]:
    return await agents.do_set_society_paused(platform, me, guild_id, False, _reason(body))


# --- agents ---


def _reason(body: ReasonBody | ModifyAgentBody | None) -> str | None:
    if body is None or body.reason is None:
        return None
    check_text(body.reason, "reason")
    return body.reason


@router.get("/agents")
async def list_agents(me: Me, platform: PlatformDep, guild_id: OptSnowflakeQuery = None) -> list[dict[str, Any]]:
    return await agents.list_agents(platform, me, guild_id)


@router.post("/agents", status_code=201)
async def create_agent(body: CreateAgentBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    agents.require_admin(me)
    check_text(body.persona, "persona")
    return await agents.do_create_agent(platform, me, body.guild_id, agents.check_persona(body.persona), body.state)


@router.get("/agents/{agent_id}")
async def get_agent(agent_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await agents.get_agent(platform, me, agent_id)


@router.patch("/agents/{agent_id}")
async def modify_agent(agent_id: Snowflake, body: ModifyAgentBody, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    agents.require_admin(me)
    why = _reason(body) or reason
    obj: dict[str, Any] | None = None
    if body.persona is not None:
        check_text(body.persona, "persona")
        obj = await agents.do_update_persona(platform, me, agent_id, body.persona, why)
    if body.state is not None:
        obj = await agents.do_set_state(platform, me, agent_id, body.state, why)
    return obj if obj is not None else await agents.get_agent(platform, me, agent_id)


@router.delete("/agents/{agent_id}", status_code=204)
async def delete_agent(agent_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason) -> Response:
    await agents.do_delete_agent(platform, me, agent_id, reason)
    return Response(status_code=204)


@router.post("/agents/{agent_id}/pause")
async def pause_agent(agent_id: Snowflake, me: Me, platform: PlatformDep, body: ReasonBody | None = None) -> dict[str, Any]:
    return await agents.do_set_state(platform, me, agent_id, "paused", _reason(body))


@router.post("/agents/{agent_id}/mute")
async def mute_agent(agent_id: Snowflake, me: Me, platform: PlatformDep, body: ReasonBody | None = None) -> dict[str, Any]:
    return await agents.do_set_state(platform, me, agent_id, "muted", _reason(body))


@router.post("/agents/{agent_id}/resume")
async def resume_agent(agent_id: Snowflake, me: Me, platform: PlatformDep, body: ReasonBody | None = None) -> dict[str, Any]:
    return await agents.do_set_state(platform, me, agent_id, "active", _reason(body))


@router.post("/agents/{agent_id}/messages", status_code=201)
async def post_as_agent(agent_id: Snowflake, body: PostAsBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """An administrator speaks as the agent (audit-logged); the message is the agent's."""
    check_text(body.content, "content")
    check_content(platform, body.content)
    author = await agents.as_author(platform, me, agent_id)
    reference = body.message_reference.model_dump() if body.message_reference else None
    sent = await messages.do_send_message(platform, author, body.channel_id,
                                          messages.NewMessage(content=body.content, nonce=body.nonce, reference=reference))
    await agents.audit_post(platform, me, agent_id, sent)
    return sent


@router.get("/agents/{agent_id}/llm-calls")
async def agent_llm_calls(agent_id: Snowflake, me: Me, platform: PlatformDep, before: OptSnowflakeQuery = None,
                          limit: int = Limit) -> list[dict[str, Any]]:
    return await agents.list_llm_calls(platform, me, agent_id=agent_id, guild_id=None, before=before, limit=limit)


@router.get("/agents/{agent_id}/turns")
async def agent_turns(agent_id: Snowflake, me: Me, platform: PlatformDep, before: OptSnowflakeQuery = None,
                      limit: int = Limit) -> list[dict[str, Any]]:
    return await agents.list_turns(platform, me, agent_id=agent_id, guild_id=None, before=before, limit=limit)


@router.get("/llm-calls")
async def llm_calls(me: Me, platform: PlatformDep, guild_id: OptSnowflakeQuery = None, before: OptSnowflakeQuery = None,
                    limit: int = Limit) -> list[dict[str, Any]]:
    return await agents.list_llm_calls(platform, me, agent_id=None, guild_id=guild_id, before=before, limit=limit)


@router.get("/turns")
async def turns(me: Me, platform: PlatformDep, guild_id: OptSnowflakeQuery = None, before: OptSnowflakeQuery = None,
                limit: int = Limit) -> list[dict[str, Any]]:
    return await agents.list_turns(platform, me, agent_id=None, guild_id=guild_id, before=before, limit=limit)
