"""Townsquare's extensions: the agent registry, manual override and the brain's records
(`/api/v10/townsquare/...`, instance administrators only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from pydantic import Field

from pydantic import ValidationError
from starlette.responses import HTMLResponse

from ....agents.scenario.load import parse_intervention
from ...actions import agents, audit, interventions, interviews, memories, messages, news, relationships, runs, world
from ...analytics.batch import report as render_batch
from ...core.errors import InvalidFormBody
from ..bodies import Body
from ..deps import MAX_SNOWFLAKE, Me, OptSnowflakeQuery, PlatformDep, Reason, Snowflake, SnowflakeInt
from ..strictjson import StrictJSONRoute, check_text
from .analytics import report_response
from .messages import ReferenceBody, check_content

router = APIRouter(prefix="/api/v10/townsquare", route_class=StrictJSONRoute)

Limit = Query(default=50, ge=1, le=200)
Snowflake_Query = Annotated[int, Query(ge=0, le=MAX_SNOWFLAKE)]


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


class NewsBody(Body):
    channel_id: SnowflakeInt
    content: str = Field(min_length=1, max_length=100_000)
    title: str | None = Field(default=None, max_length=100)


class FactBody(Body):
    subject: str = Field(min_length=1, max_length=60)
    predicate: str = Field(min_length=1, max_length=40)
    object: str = Field(min_length=1, max_length=60)


class MemoryBody(Body):
    text: str = Field(default="", max_length=2000)
    kind: Literal["observation", "reflection", "summary", "fact"] = "observation"
    importance: float | None = Field(default=None, ge=1, le=10)
    about: list[SnowflakeInt] = Field(default_factory=list, max_length=20)
    fact: FactBody | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)


class InterviewBody(Body):
    question: str = Field(max_length=4000)  # checked for emptiness and length (MAX_QUESTION) on one line by the action
    remember: bool = False


class SocietyInterviewBody(Body):
    question: str = Field(max_length=4000)
    agent_ids: list[SnowflakeInt] | None = Field(default=None, max_length=interviews.MAX_BATCH)


# --- the security log ---


@router.get("/security-log")
async def security_log(me: Me, platform: PlatformDep, scope: Literal["all", "platform"] = "all", guild_id: OptSnowflakeQuery = None,
                       user_id: OptSnowflakeQuery = None, target_id: OptSnowflakeQuery = None,
                       action_type: int | None = Query(default=None, ge=0, le=32767), before: OptSnowflakeQuery = None,
                       after: OptSnowflakeQuery = None, limit: int = Query(default=50, ge=1, le=100)) -> dict[str, Any]:
    """Logins, tokens and accounts (`scope=platform`: only these), plus every guild's audit entries
    (administration, overrides); instance administrators only."""
    return await audit.get_security_log(platform, me, platform_only=scope == "platform", guild_id=guild_id, filter_user=user_id,
                                        target_id=target_id, action_type=action_type, before=before, after=after, limit=limit)


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


@router.post("/societies/{guild_id}/news", status_code=201)
async def publish_news(guild_id: Snowflake, body: NewsBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """A news item, now: posted to the channel by the society's news source (audit-logged)."""
    agents.require_admin(me)
    check_text(body.content, "content")
    if not body.content.strip():
        raise InvalidFormBody.field("content", "BASE_TYPE_REQUIRED", "This field is required")
    if body.title is not None:
        check_text(body.title, "title")
    check_content(platform, news.compose(body.content, body.title))
    sent, _ = await news.do_publish_news(platform, me, guild_id, body.channel_id, body.content, body.title)
    return sent


@router.get("/societies/{guild_id}/world")
async def get_world(guild_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """The society's world now: simulated time, events on and coming, news out and due, whereabouts."""
    return await world.get_world(platform, me, guild_id)


@router.get("/societies/{guild_id}/news")
async def list_news(guild_id: Snowflake, me: Me, platform: PlatformDep, limit: int = Query(default=20, ge=1, le=100)) -> list[dict[str, Any]]:
    return await news.list_news(platform, me, guild_id, limit)


@router.post("/societies/{guild_id}/interventions")
async def intervene(guild_id: Snowflake, body: dict[str, Any], me: Me, platform: PlatformDep) -> dict[str, Any]:
    """Applies one intervention (a scenario timeline entry: {"kind": "tell", "agent": ..., "fact": ...})
    to the live society, through the same actions as everything else (audit-logged); returns what
    it did. `at` / `at_real` are accepted and ignored: it happens now."""
    agents.require_admin(me)
    check_text(body, "body")
    try:
        entry = parse_intervention(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"] if p not in interventions_tags()]
        raise InvalidFormBody.field(".".join(loc) or "kind", "INTERVENTION_INVALID", str(first["msg"]).removeprefix("Value error, ")[:200]) from None
    return await interventions.do_intervene(platform, me, guild_id, entry)


def interventions_tags() -> frozenset[str]:
    from ....agents.scenario.model import KINDS

    return frozenset(KINDS)


# --- scenario runs ---


@router.get("/runs")
async def list_runs(me: Me, platform: PlatformDep, before: OptSnowflakeQuery = None, limit: int = Limit) -> list[dict[str, Any]]:
    """Scenario runs (`townsquare run`), newest first, with their state and answers."""
    return await runs.list_runs(platform, me, before=before, limit=limit)


@router.get("/runs/{run_id}")
async def get_run(run_id: Snowflake, me: Me, platform: PlatformDep) -> dict[str, Any]:
    return await runs.get_run(platform, me, run_id)


@router.get("/runs/batches/{batch_id}/report",
            responses={200: {"description": "The batch's report, one HTML file", "content": {"text/html": {"schema": {"type": "string"}}}}})
async def batch_report(batch_id: Snowflake, me: Me, platform: PlatformDep, download: bool = False) -> HTMLResponse:
    """The runs of one `townsquare run` side by side: each question's arms (mean, spread, A - B with a
    95% interval), the diffusion of the planted facts in every run, the runs and their answers."""
    agents.require_admin(me)
    return report_response(await render_batch(platform, batch_id), f"townsquare-batch-{batch_id}-report.html", download)


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
    obj = await agents.get_agent(platform, me, agent_id)
    obj["memory_count"] = await memories.memory_count(platform, agent_id)
    return obj


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


# --- memory and relationships ---


@router.get("/agents/{agent_id}/memories")
async def agent_memories(agent_id: Snowflake, me: Me, platform: PlatformDep,
                         query: str | None = Query(default=None, min_length=1, max_length=500),
                         kind: Literal["observation", "reflection", "summary", "fact"] | None = None,
                         about: OptSnowflakeQuery = None, limit: int = Query(default=20, ge=1, le=100)) -> dict[str, Any]:
    """Without `query`: the newest memories; with it: the best by recency x importance x relevance."""
    if query is not None:
        check_text(query, "query")
    return await memories.search_memories(platform, me, agent_id, query=query, kind=kind, about=about, limit=limit)


@router.post("/agents/{agent_id}/memories", status_code=201)
async def add_memory(agent_id: Snowflake, body: MemoryBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    check_text(body.text, "text")
    if body.kind == "fact":
        if body.fact is None:
            raise InvalidFormBody.field("fact", "BASE_TYPE_REQUIRED", "A fact needs subject, predicate and object.")
        check_text(body.fact.model_dump(), "fact")
    elif not body.text.strip():
        raise InvalidFormBody.field("text", "BASE_TYPE_REQUIRED", "This field is required")
    return await memories.add_memory(platform, me, agent_id, text=body.text, kind=body.kind, importance=body.importance,
                                     about=list(body.about), fact=body.fact.model_dump() if body.fact else None,
                                     confidence=body.confidence)


@router.delete("/agents/{agent_id}/memories/{memory_id}", status_code=204)
async def forget_memory(agent_id: Snowflake, me: Me, platform: PlatformDep, reason: Reason,
                        memory_id: str = PathParam(pattern=r"^[0-9a-f]{8,64}$")) -> Response:
    await memories.forget_memories(platform, me, agent_id, memory_id_=memory_id, reason=reason)
    return Response(status_code=204)


@router.delete("/agents/{agent_id}/memories")
async def forget_about(agent_id: Snowflake, about: Snowflake_Query, me: Me, platform: PlatformDep, reason: Reason) -> dict[str, Any]:
    """Forgets everything the agent remembers about one person."""
    return {"forgotten": await memories.forget_memories(platform, me, agent_id, about=about, reason=reason)}


# --- interviews ---


@router.post("/agents/{agent_id}/interview")
async def interview_agent(agent_id: Snowflake, body: InterviewBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """Asks the agent a question out of band: the answer comes from its memory, persona,
    relationships and mood; nothing is posted, and its memory keeps nothing unless `remember`."""
    check_text(body.question, "question")
    return await interviews.interview_agent(platform, me, agent_id, body.question, remember=body.remember)


@router.post("/societies/{guild_id}/interview")
async def interview_society(guild_id: Snowflake, body: SocietyInterviewBody, me: Me, platform: PlatformDep) -> dict[str, Any]:
    """Asks several agents of the society (all by default) the same question."""
    check_text(body.question, "question")
    return await interviews.interview_society(platform, me, guild_id, body.question,
                                              list(body.agent_ids) if body.agent_ids is not None else None)


@router.get("/agents/{agent_id}/relationships")
async def agent_relationships(agent_id: Snowflake, me: Me, platform: PlatformDep) -> list[dict[str, Any]]:
    return await relationships.list_relationships(platform, me, agent_id)
