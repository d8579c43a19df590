"""Interventions: a scenario's timeline entries, applied to a live society as ordinary actions.

Each kind is carried out by the action that an administrator's own request would use (a memory
added, an agent created, changed, paused or deleted, a channel created or closed, news
published), so it is validated, written with its event and audit-logged the same way; on top,
one SOCIETY_INTERVENTION entry in the guild's audit log records the intervention as a whole (its
kind, its name in the scenario, the run it belongs to, what it did). `townsquare run` and
`POST /api/v10/townsquare/societies/{guild_id}/interventions` both come through here.

Agents and channels are named as in the scenario file: a persona name (case-insensitive) or a
channel name, or an id. Channel changes act as the society's owner (the guild's owner holds the
permissions); the audit entry names the administrator who intervened.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ...agents.memory.model import Kind, Memory, memory_id
from ...agents.scenario import model as sc
from ...agents.scenario.document import claims as document_claims
from ..core.errors import InvalidFormBody, UnknownAgent, UnknownChannel, UnknownGuild
from ..core.snowflake import new_id
from ..db.models import Agent, Channel, Guild
from . import agents, channels, memories, news
from .audit import A
from .context import Platform
from .users import AuthUser

TEXT_CHANNELS = (0, 5)  # text and announcement channels take news and can be closed


async def _guild_owner(platform: Platform, guild_id: int) -> int:
    async with platform.read() as conn:
        owner = (await conn.execute(select(Guild.owner_id).where(Guild.id == guild_id))).scalar()
    if owner is None:
        raise UnknownGuild()
    return int(owner)


async def resolve_agent(platform: Platform, guild_id: int, ref: str) -> tuple[int, str]:
    """An agent of this society by id or persona name: (id, name); UnknownAgent otherwise."""
    async with platform.read() as conn:
        rows = (await conn.execute(select(Agent.id, Agent.persona).where(Agent.guild_id == guild_id))).all()
    for row in rows:
        if ref == str(row.id) or ref.strip().lower() == str(row.persona.get("name", "")).lower():
            return int(row.id), str(row.persona.get("name"))
    raise UnknownAgent()


async def resolve_channel(platform: Platform, guild_id: int, ref: str) -> tuple[int, str]:
    """A text channel of this society by id or name (a leading '#' allowed): (id, name)."""
    wanted = ref.strip().lstrip("#").lower()
    async with platform.read() as conn:
        rows = (await conn.execute(select(Channel.id, Channel.name).where(Channel.guild_id == guild_id,
                                                                          Channel.type.in_(TEXT_CHANNELS)))).all()
    for row in rows:
        if ref == str(row.id) or wanted == (row.name or "").lower():
            return int(row.id), str(row.name)
    raise UnknownChannel()


async def _agents_of(platform: Platform, guild_id: int, refs: list[str] | str) -> list[tuple[int, str]]:
    if refs == "all":
        async with platform.read() as conn:
            rows = (await conn.execute(select(Agent.id, Agent.persona).where(Agent.guild_id == guild_id).order_by(Agent.id))).all()
        return [(int(r.id), str(r.persona.get("name"))) for r in rows]
    return [await resolve_agent(platform, guild_id, ref) for ref in refs]


def _document_text(entry: sc.InjectDocument, base_dir: Path | None) -> str:
    if entry.text is not None:
        return entry.text
    if base_dir is None:  # the route: a path on the server's disk is not the caller's to read
        raise InvalidFormBody.field("path", "DOCUMENT_PATH", "Give the document's text; a path is read only from a scenario file.")
    path = (base_dir / str(entry.path)).resolve()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidFormBody.field("path", "DOCUMENT_UNREADABLE", f"Cannot read {entry.path}: {exc.strerror or exc}") from None


async def _tell_many(platform: Platform, told: list[tuple[int, str]], lines: list[str], importance: float, source: str) -> int:
    """Writes each line into each agent's memory (one memory per line and agent); returns how many."""
    now = time.time()
    count = 0
    for agent_id, _ in told:
        for line in lines:
            memory = Memory(id=memory_id(agent_id, source, line), agent_id=agent_id, kind=Kind.OBSERVATION, text=line,
                            importance=importance, created_at=now, last_access=now, source=source, rated=True)
            await memories._store(platform, lambda store, m=memory: store.add(m))
            count += 1
    return count


def run_suffix(run_id: int | None) -> str:
    """The agents of a run's society carry it in their bot usernames: the same cast can be run
    again (usernames are unique across the instance); persona names stay as written."""
    return f".{hashlib.sha256(str(run_id).encode()).hexdigest()[:6]}" if run_id else ""


async def do_intervene(platform: Platform, me: AuthUser, guild_id: int, entry: Any, *, run_id: int | None = None,
                       base_dir: Path | None = None) -> dict[str, Any]:
    """Applies one intervention to the society; returns what it did (`did`, in words, and the
    objects it touched). Unknown agents / channels are 404s, bad values 400s, as for the routes."""
    agents.require_admin(me)
    await _guild_owner(platform, guild_id)
    result: dict[str, Any] = {"kind": entry.kind, "name": entry.name, "guild_id": str(guild_id)}
    target: int | None = None
    why = f"scenario intervention {entry.name}" if entry.name else "intervention"

    if isinstance(entry, sc.Tell):
        target, agent_name = await resolve_agent(platform, guild_id, entry.agent)
        stored = await memories.add_memory(platform, me, target, text=entry.fact, kind="observation", importance=entry.importance,
                                           about=[], fact=None, confidence=None)
        result.update(agent_id=str(target), memory=stored, did=f"told {agent_name}: {entry.fact}")
    elif isinstance(entry, sc.News):
        channel_id, channel_name = await resolve_channel(platform, guild_id, entry.channel)
        target = channel_id
        limit = platform.settings.max_message_length
        if len(news.compose(entry.content, entry.title)) > limit:
            raise InvalidFormBody.field("content", "BASE_TYPE_MAX_LENGTH", f"Title and content must be {limit} or fewer in length.")
        published, _ = await news.do_publish_news(platform, me, guild_id, channel_id, entry.content, entry.title)
        result.update(channel_id=str(channel_id), news=published, did=f"published news in #{channel_name}: {entry.title or entry.content}")
    elif isinstance(entry, sc.AddAgent):
        created = await agents.do_create_agent(platform, me, guild_id, entry.persona, entry.state, username_suffix=run_suffix(run_id))
        target = int(created["id"])
        result.update(agent_id=created["id"], agent=created, did=f"added agent {created['name']}")
    elif isinstance(entry, sc.RemoveAgent):
        target, agent_name = await resolve_agent(platform, guild_id, entry.agent)
        await agents.do_delete_agent(platform, me, target, entry.reason or why)
        result.update(agent_id=str(target), did=f"removed agent {agent_name}")
    elif isinstance(entry, sc.SetAgentState):
        target, agent_name = await resolve_agent(platform, guild_id, entry.agent)
        state = {"pause_agent": "paused", "mute_agent": "muted", "resume_agent": "active"}[entry.kind]
        changed = await agents.do_set_state(platform, me, target, state, entry.reason or why)
        result.update(agent_id=str(target), agent=changed, did=f"{agent_name} is now {state}")
    elif isinstance(entry, sc.ChangeAgent):
        target, agent_name = await resolve_agent(platform, guild_id, entry.agent)
        changes = entry.persona_changes()
        changed = await agents.do_update_persona(platform, me, target, changes, entry.reason or why)
        result.update(agent_id=str(target), agent=changed, did=f"changed {agent_name}: {', '.join(sorted(changes))}")
    elif isinstance(entry, sc.OpenChannel):
        created = await channels.do_create_guild_channel(platform, await _guild_owner(platform, guild_id), guild_id,
                                                         {"name": entry.channel, "type": 0, "topic": entry.topic or None}, why)
        target = int(created["id"])
        result.update(channel_id=created["id"], channel=created, did=f"opened #{created['name']}")
    elif isinstance(entry, sc.CloseChannel):
        channel_id, channel_name = await resolve_channel(platform, guild_id, entry.channel)
        target = channel_id
        # @everyone (the guild's id) may no longer post: the channel stays readable; workers leave it alone
        await channels.do_set_overwrite(platform, await _guild_owner(platform, guild_id), channel_id, guild_id, type=0, allow=0,
                                        deny=agents.CLOSED_DENY, reason=entry.reason or why)
        result.update(channel_id=str(channel_id), did=f"closed #{channel_name}")
    elif isinstance(entry, sc.InjectDocument):
        found = document_claims(_document_text(entry, base_dir), entry.max_claims)
        if not found:
            raise InvalidFormBody.field("text", "DOCUMENT_EMPTY", "The document states nothing (no sentence of four words or more).")
        told = await _agents_of(platform, guild_id, entry.agents)
        heading = f"News ({entry.title})" if entry.title else "News"
        lines = [f"{heading}: {c}" for c in found]
        written = await _tell_many(platform, told, lines, entry.importance, f"document:{new_id()}")
        result.update(claims=found, agent_ids=[str(a) for a, _ in told], memories=written,
                      did=f"{len(found)} claims of {entry.title or 'a document'} told to {len(told)} agents")
    else:  # pragma: no cover - the schema's union is closed
        raise InvalidFormBody.field("kind", "BASE_TYPE_CHOICES", f"Must be one of {', '.join(sc.KINDS)}.")

    async with platform.transaction() as tx:
        await tx.audit(guild_id=guild_id, user_id=me.id, action_type=A.SOCIETY_INTERVENTION, target_id=target, reason=why,
                       options={"kind": entry.kind, "name": entry.name, "run_id": str(run_id) if run_id else None,
                                "did": result["did"][:300]})
    return result
