"""The agent registry and the society's master switches (`/api/v10/townsquare/...`).

An agent is a bot user (same id) that belongs to one society (guild) and carries a persona.
Creating one creates the bot user, its token (kept sealed for the workers), its membership and
the registry row in one transaction. Every administrative change is audit-logged and emitted
(AGENT_CREATE / AGENT_UPDATE / AGENT_DELETE, SOCIETY_UPDATE), so dashboards and workers learn
about it from the event stream like anything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson
from cryptography.fernet import InvalidToken
from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select, text, update

from ...agents.mind.mood import Mood
from ...agents.society.persona import Persona, Society as SocietySpec
from ..core.errors import InvalidFormBody, MissingPermissions, UnknownAgent, UnknownGuild, UnknownMember
from ..core.secretbox import seal, unseal
from ..core.snowflake import new_id
from ..core.permissions import P
from ..db.models import Agent, AgentTurn, AuditLogEntry, Channel, Guild, LlmCall, Role, Society, Token, User
from ..events.types import E
from . import shapes
from .audit import A
from .context import Platform, Tx
from .guilds import add_member, emit_member_update, member_object, member_row, remove_member
from .users import AuthUser, _new_token, check_username, hash_token, insert_bot

log = logging.getLogger("townsquare.agents")

STATES = ("active", "paused", "muted")
AGENT_ROLE = "townsfolk"  # every agent of a society holds it: it may open channels for new topics and groups


def require_admin(me: AuthUser) -> None:
    if not me.is_admin:
        raise MissingPermissions()


def check_persona(data: Any, field: str = "persona") -> Persona:
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in (field, *first["loc"]))
        raise InvalidFormBody.field(where, "PERSONA_INVALID", first["msg"][:200]) from None


def agent_object(row: Any, user_row: Any, *, now: datetime | None = None, sim_speed: float = 1.0) -> dict[str, Any]:
    """The API shape. The mood shown is the stored one relaxed to now, as the worker would feel it."""
    persona = Persona.model_validate(row.persona)
    mood = Mood.from_json(row.mood, persona.traits)
    now = now or datetime.now(timezone.utc)
    if row.mood_at is not None:
        mood = mood.relaxed(persona.traits, (now - row.mood_at).total_seconds() * sim_speed)
    resting = row.resting_until is not None and row.resting_until > now
    return {
        "id": str(row.id),
        "guild_id": str(row.guild_id),
        "user": shapes.user(user_row),
        "name": persona.name,
        "persona": persona.model_dump(mode="json"),
        "state": row.state,
        "state_reason": row.state_reason,
        "status": "resting" if resting and row.state == "active" else row.state,
        "resting_until": shapes.iso(row.resting_until) if resting else None,
        "mood": mood.to_json(),
        "created_at": shapes.iso(row.created_at),
        "updated_at": shapes.iso(row.updated_at),
    }


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    """What members of the society see in AGENT_* events: no mood stream, just who and how."""
    return {k: obj[k] for k in ("id", "guild_id", "user", "name", "state", "status", "state_reason")}


async def _load(conn: Any, agent_id: int) -> tuple[Any, Any]:
    row = (await conn.execute(select(Agent).where(Agent.id == agent_id))).first()
    if row is None:
        raise UnknownAgent()
    user_row = (await conn.execute(select(User).where(User.id == agent_id))).one()
    return row, user_row


async def _emit(tx: Tx, type: E, obj: dict[str, Any]) -> None:
    await tx.emit(type, _public(obj), guild_id=int(obj["guild_id"]))


def suffixed(username: str, suffix: str) -> str:
    """A bot's username with a suffix that keeps it unique (a scenario run's copy of a society)."""
    return username[:32 - len(suffix)] + suffix if suffix else username


async def create_agent(tx: Tx, platform: Platform, *, creator_id: int | None, guild_id: int, persona: Persona,
                       state: str = "active", username_suffix: str = "") -> dict[str, Any]:
    """Inside a transaction: bot user + token + membership + registry row + event."""
    user_row, token = await insert_bot(tx, owner_id=creator_id, username=suffixed(persona.username, username_suffix),
                                       global_name=persona.name[:32], bio=persona.bio[:190])
    await add_member(tx, guild_id, user_row.id)
    role = (await tx.conn.execute(select(Role.id).where(Role.guild_id == guild_id, Role.name == AGENT_ROLE))).scalar()
    if role is not None:
        await tx.conn.execute(text("UPDATE members SET roles = array_append(roles, :r) WHERE guild_id = :g AND user_id = :u"),
                              {"r": role, "g": guild_id, "u": user_row.id})
        await emit_member_update(tx, guild_id, user_row.id)
    row = (await tx.conn.execute(insert(Agent).values(
        id=user_row.id, guild_id=guild_id, persona=persona.model_dump(mode="json"), state=state,
        mood=Mood.baseline(persona.traits).to_json(), mood_at=func.now(), token_secret=seal(platform.settings, token),
        created_by=creator_id,
    ).returning(Agent))).one()
    obj = agent_object(row, user_row, sim_speed=platform.settings.sim_speed)
    await tx.audit(guild_id=guild_id, user_id=creator_id, action_type=A.AGENT_CREATE, target_id=row.id,
                   changes=[{"key": "name", "new_value": persona.name}])
    await _emit(tx, E.AGENT_CREATE, obj)
    return obj


async def _require_free_usernames(conn: Any, personas: list[Persona], suffix: str = "") -> None:
    usernames = [check_username(suffixed(p.username, suffix)).lower() for p in personas]
    taken = (await conn.execute(text("SELECT username FROM users WHERE lower(username) = ANY(:names)"), {"names": usernames})).scalars().all()
    if taken:
        raise InvalidFormBody.field("agents", "USERNAME_ALREADY_TAKEN",
                                    f"{len(taken)} agent name(s) belong to existing users already, e.g. {', '.join(sorted(taken)[:5])}")


SEED_BATCH = 500  # agents per INSERT while seeding (a few thousand bind parameters; the driver allows 32,767)


async def create_agents(tx: Tx, platform: Platform, *, creator_id: int | None, guild_id: int, personas: list[Persona],
                        username_suffix: str = "") -> int:
    """Inside a transaction: what `create_agent` does for each persona, in batches of statements
    (users, tokens, members with the agents' role, registry rows, audit entries, GUILD_MEMBER_ADD
    and AGENT_CREATE events) instead of a dozen round trips per agent, so that a society of
    10,000 agents seeds in one to two minutes. Usernames taken already are refused before anything is
    written. Returns how many agents were created."""
    await _require_free_usernames(tx.conn, personas, username_suffix)
    role = (await tx.conn.execute(select(Role.id).where(Role.guild_id == guild_id, Role.name == AGENT_ROLE))).scalar()
    settings = platform.settings
    for start in range(0, len(personas), SEED_BATCH):
        batch = personas[start:start + SEED_BATCH]
        ids = [new_id() for _ in batch]
        tokens = [_new_token(i) for i in ids]
        users = (await tx.conn.execute(insert(User).values([
            {"id": i, "username": suffixed(p.username, username_suffix), "global_name": p.name[:32], "bot": True, "owner_id": creator_id, "bio": p.bio[:190]}
            for i, p in zip(ids, batch)]).returning(User))).all()
        await tx.conn.execute(insert(Token).values([
            {"id": new_id(), "user_id": i, "token_hash": hash_token(t), "kind": "bot"} for i, t in zip(ids, tokens)]))
        await tx.conn.execute(text("INSERT INTO members (guild_id, user_id, roles) SELECT :g, u, CAST(:roles AS bigint[]) "
                                   "FROM unnest(CAST(:ids AS bigint[])) AS x(u)"),
                              {"g": guild_id, "ids": ids, "roles": [role] if role is not None else []})
        members = (await tx.conn.execute(text(
            "SELECT m.*, to_jsonb(u) AS user FROM members m JOIN users u ON u.id = m.user_id "
            "WHERE m.guild_id = :g AND m.user_id = ANY(:ids) ORDER BY m.user_id"), {"g": guild_id, "ids": ids})).all()
        await tx.emit_many(E.GUILD_MEMBER_ADD, [{**member_object(m), "guild_id": str(guild_id)} for m in members], guild_id=guild_id)
        rows = (await tx.conn.execute(insert(Agent).values([
            {"id": i, "guild_id": guild_id, "persona": p.model_dump(mode="json"), "state": "active",
             "mood": Mood.baseline(p.traits).to_json(), "mood_at": func.now(), "token_secret": seal(settings, t), "created_by": creator_id}
            for i, p, t in zip(ids, batch, tokens)]).returning(Agent))).all()
        by_id = {u.id: u for u in users}
        objects = [agent_object(r, by_id[r.id], sim_speed=settings.sim_speed) for r in rows]
        await tx.conn.execute(insert(AuditLogEntry).values([
            {"id": new_id(), "guild_id": guild_id, "user_id": creator_id, "action_type": A.AGENT_CREATE, "target_id": int(o["id"]),
             "changes": [{"key": "name", "new_value": o["name"]}]} for o in objects]))
        await tx.emit_many(E.AGENT_CREATE, [_public(o) for o in objects], guild_id=guild_id)
    return len(personas)


async def _require_society(conn: Any, guild_id: int) -> None:
    if (await conn.execute(select(Guild.id).where(Guild.id == guild_id))).first() is None:
        raise UnknownGuild()


async def do_create_agent(platform: Platform, me: AuthUser, guild_id: int, persona: Persona, state: str = "active",
                          username_suffix: str = "") -> dict[str, Any]:
    require_admin(me)
    async with platform.transaction() as tx:
        await _require_society(tx.conn, guild_id)
        return await create_agent(tx, platform, creator_id=me.id, guild_id=guild_id, persona=persona, state=state,
                                  username_suffix=username_suffix)


async def list_agents(platform: Platform, me: AuthUser, guild_id: int | None = None, *, after: int | None = None,
                      limit: int | None = None) -> list[dict[str, Any]]:
    """The agents by id (of one society), optionally a page: those after `after`, at most `limit`."""
    require_admin(me)
    async with platform.read() as conn:
        query = select(Agent).order_by(Agent.id)
        if guild_id is not None:
            query = query.where(Agent.guild_id == guild_id)
        if after is not None:
            query = query.where(Agent.id > after)
        if limit is not None:
            query = query.limit(limit)
        rows = (await conn.execute(query)).all()
        users = {u.id: u for u in (await conn.execute(select(User).where(User.id.in_([r.id for r in rows])))).all()}
    now = datetime.now(timezone.utc)
    return [agent_object(r, users[r.id], now=now, sim_speed=platform.settings.sim_speed) for r in rows]


async def get_agent(platform: Platform, me: AuthUser, agent_id: int) -> dict[str, Any]:
    require_admin(me)
    async with platform.read() as conn:
        row, user_row = await _load(conn, agent_id)
    return agent_object(row, user_row, sim_speed=platform.settings.sim_speed)


async def do_update_persona(platform: Platform, me: AuthUser, agent_id: int, changes: dict[str, Any], reason: str | None) -> dict[str, Any]:
    """Merges `changes` into the persona (top-level keys; `traits` / `rhythm` / `stances` merge by key)."""
    require_admin(me)
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(select(Agent).where(Agent.id == agent_id).with_for_update())).first()
        if row is None:
            raise UnknownAgent()
        merged = dict(row.persona)
        for key, value in changes.items():
            if key in ("traits", "rhythm", "stances") and isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        persona = check_persona(merged)
        before = Persona.model_validate(row.persona).model_dump(mode="json")
        after = persona.model_dump(mode="json")
        await tx.conn.execute(update(Agent).where(Agent.id == agent_id).values(persona=after, updated_at=func.now()))
        if persona.name != before["name"]:
            await tx.conn.execute(update(User).where(User.id == agent_id).values(global_name=persona.name[:32]))
        await tx.conn.execute(update(User).where(User.id == agent_id).values(bio=persona.bio[:190]))
        row, user_row = await _load(tx.conn, agent_id)
        obj = agent_object(row, user_row, sim_speed=platform.settings.sim_speed)
        await tx.audit(guild_id=row.guild_id, user_id=me.id, action_type=A.AGENT_UPDATE, target_id=agent_id,
                       changes=[{"key": k, "old_value": before.get(k), "new_value": v} for k, v in after.items() if before.get(k) != v],
                       reason=reason)
        await _emit(tx, E.AGENT_UPDATE, obj)
    return obj


async def do_set_state(platform: Platform, me: AuthUser | None, agent_id: int, state: str, reason: str | None) -> dict[str, Any]:
    """active / paused (does nothing) / muted (reads and feels, never speaks). `me` None: the
    runtime itself (a misbehaving agent paused with a reason)."""
    if me is not None:
        require_admin(me)
    if state not in STATES:
        raise InvalidFormBody.field("state", "BASE_TYPE_CHOICES", f"Must be one of {', '.join(STATES)}.")
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(update(Agent).where(Agent.id == agent_id).values(
            state=state, state_reason=reason if state != "active" else None, updated_at=func.now(),
        ).returning(Agent.id))).first()
        if row is None:
            raise UnknownAgent()
        row, user_row = await _load(tx.conn, agent_id)
        obj = agent_object(row, user_row, sim_speed=platform.settings.sim_speed)
        await tx.audit(guild_id=row.guild_id, user_id=me.id if me else None, action_type=A.AGENT_STATE, target_id=agent_id,
                       changes=[{"key": "state", "new_value": state}], reason=reason)
        await _emit(tx, E.AGENT_UPDATE, obj)
    return obj


async def do_delete_agent(platform: Platform, me: AuthUser, agent_id: int, reason: str | None) -> None:
    """The registry row goes, the bot leaves the guild and its tokens are revoked; its messages
    stay (authored by a renamed, tokenless bot user, as Discord keeps a deleted account's)."""
    require_admin(me)
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(delete(Agent).where(Agent.id == agent_id).returning(Agent))).first()
        if row is None:
            raise UnknownAgent()
        revoked = (await tx.conn.execute(update(Token).where(Token.user_id == agent_id, Token.revoked_at.is_(None))
                                         .values(revoked_at=func.now()).returning(Token.id))).scalars().all()
        try:
            await remove_member(tx, row.guild_id, await member_row(tx.conn, row.guild_id, agent_id))
        except UnknownMember:
            pass  # an administrator kicked it already
        await tx.conn.execute(update(User).where(User.id == agent_id).values(username=f"deleted_{agent_id}"))
        await tx.emit(E.TOKEN_REVOKED, {"token_ids": [str(t) for t in revoked]}, user_ids=[agent_id])
        await tx.emit(E.AGENT_DELETE, {"id": str(agent_id), "guild_id": str(row.guild_id)}, guild_id=row.guild_id)
        await tx.audit(guild_id=row.guild_id, user_id=me.id, action_type=A.AGENT_DELETE, target_id=agent_id,
                       changes=[{"key": "name", "old_value": row.persona.get("name")}], reason=reason)
    platform.auth_cache.forget_tokens(set(revoked))
    platform.auth_cache.forget_user(agent_id)


async def as_author(platform: Platform, me: AuthUser, agent_id: int) -> AuthUser:
    """The agent as a message author, for an administrator posting in its name."""
    require_admin(me)
    async with platform.read() as conn:
        row, user_row = await _load(conn, agent_id)
    return AuthUser(user_row.id, user_row.username, user_row.global_name, user_row.avatar, True, False, 0)


async def audit_post(platform: Platform, me: AuthUser, agent_id: int, message: dict[str, Any]) -> None:
    async with platform.transaction() as tx:
        guild_id = (await tx.conn.execute(select(Agent.guild_id).where(Agent.id == agent_id))).scalar_one()
        await tx.audit(guild_id=guild_id, user_id=me.id, action_type=A.AGENT_POST, target_id=agent_id,
                       options={"channel_id": message["channel_id"], "message_id": message["id"]})


# --- the society switch ---


def society_object(row: Any) -> dict[str, Any]:
    return {"guild_id": str(row.guild_id), "name": row.name, "paused": row.paused, "paused_reason": row.paused_reason,
            "revival_topics": row.revival_topics, "created_at": shapes.iso(row.created_at)}


async def get_society(platform: Platform, me: AuthUser, guild_id: int) -> dict[str, Any]:
    require_admin(me)
    async with platform.read() as conn:
        row = (await conn.execute(select(Society).where(Society.guild_id == guild_id))).first()
    if row is None:
        raise UnknownGuild()
    return society_object(row)


async def list_societies(platform: Platform, me: AuthUser) -> list[dict[str, Any]]:
    require_admin(me)
    async with platform.read() as conn:
        rows = (await conn.execute(select(Society).order_by(Society.guild_id))).all()
    return [society_object(r) for r in rows]


async def do_set_society_paused(platform: Platform, me: AuthUser, guild_id: int, paused: bool, reason: str | None) -> dict[str, Any]:
    require_admin(me)
    async with platform.transaction() as tx:
        row = (await tx.conn.execute(update(Society).where(Society.guild_id == guild_id).values(
            paused=paused, paused_reason=reason if paused else None, updated_at=func.now()).returning(Society))).first()
        if row is None:
            raise UnknownGuild()
        obj = society_object(row)
        await tx.audit(guild_id=guild_id, user_id=me.id, action_type=A.SOCIETY_UPDATE, target_id=guild_id,
                       changes=[{"key": "paused", "new_value": paused}], reason=reason)
        await tx.emit(E.SOCIETY_UPDATE, obj, guild_id=guild_id)
    return obj


async def do_found_society(platform: Platform, owner_id: int, spec: SocietySpec, name: str, username_suffix: str = "") -> int:
    """Creates the guild, its channels and its cast from a society file; returns the guild id.
    Idempotent by society name: a second call returns the existing society unchanged.
    `username_suffix` makes the agents' bot usernames unique (a second copy of the same cast)."""
    from .channels import do_create_guild_channel
    from .guilds import do_create_guild, do_create_role

    async with platform.read() as conn:
        existing = (await conn.execute(select(Society.guild_id).where(Society.name == name))).scalar()
    if existing is not None:
        return int(existing)
    async with platform.read() as conn:  # refused before anything is made
        await _require_free_usernames(conn, list(spec.agents))
    guild = await do_create_guild(platform, owner_id, name=spec.guild, description=spec.description or None)
    guild_id = int(guild["id"])
    await do_create_role(platform, owner_id, guild_id, {"name": AGENT_ROLE, "permissions": int(P.MANAGE_CHANNELS)},
                         "agents open channels for emerging topics")
    async with platform.transaction() as tx:
        general = (await tx.conn.execute(select(Channel).where(Channel.guild_id == guild_id, Channel.name == "general"))).first()
    for channel in spec.channels:
        if channel.name == "general" and general is not None:
            if channel.topic:
                from .channels import do_modify_channel

                await do_modify_channel(platform, owner_id, general.id, {"topic": channel.topic}, None)
            continue
        await do_create_guild_channel(platform, owner_id, guild_id, {"name": channel.name, "type": 0, "topic": channel.topic or None}, None)
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Society).values(guild_id=guild_id, name=name, revival_topics=spec.revival_topics))
        await create_agents(tx, platform, creator_id=owner_id, guild_id=guild_id, personas=list(spec.agents),
                            username_suffix=username_suffix)
        if spec.world is not None:  # the news source, a bot user like the agents (news.py)
            from .news import ensure_source

            await ensure_source(tx, guild_id, spec.world.news_source)
    return guild_id


# --- what the runtime reads and records ---


@dataclass(frozen=True)
class AgentRecord:
    """An agent as a worker needs it, token included (never leaves the worker)."""

    id: int
    guild_id: int
    persona: Persona
    state: str
    mood: dict[str, Any]
    mood_at: datetime | None
    resting_until: datetime | None
    token: str
    updated_at: datetime


async def load_registry(platform: Platform) -> tuple[list[AgentRecord], dict[int, dict[str, Any]]]:
    """Every agent and every society (by guild id), for the workers."""
    async with platform.read() as conn:
        rows = (await conn.execute(select(Agent).order_by(Agent.id))).all()
        societies = {r.guild_id: society_object(r) for r in (await conn.execute(select(Society))).all()}
        for gid, gname in (await conn.execute(select(Guild.id, Guild.name).where(Guild.id.in_(list(societies))))).all():
            societies[gid]["guild_name"] = gname
    agents = []
    for r in rows:
        try:
            token = unseal(platform.settings, r.token_secret)
        except InvalidToken:  # sealed under another key (a data folder not restored with the database): that agent only
            log.warning("an agent's token cannot be unsealed with this installation's key; it is left out", extra={"agent": r.id})
            continue
        agents.append(AgentRecord(r.id, r.guild_id, Persona.model_validate(r.persona), r.state, r.mood, r.mood_at, r.resting_until,
                                  token, r.updated_at))
    return agents, societies


async def registry_version(platform: Platform) -> tuple[Any, ...]:
    """Cheap change detector for the workers' registry cache."""
    async with platform.read() as conn:
        row = (await conn.execute(text(
            "SELECT (SELECT count(*) FROM agents), (SELECT max(updated_at) FROM agents), "
            "(SELECT max(updated_at) FROM societies), (SELECT count(*) FROM societies)"))).one()
    return tuple(row)


async def join_channel(platform: Platform, agent_ids: list[int], channel_name: str) -> None:
    """Agents start following a channel (one they opened or were invited to): its name joins
    their persona's home channels. The agents' own doing, so not an administrative change:
    emitted (AGENT_UPDATE) for the workers, not audit-logged."""
    async with platform.transaction() as tx:
        for agent_id in agent_ids:
            row = (await tx.conn.execute(select(Agent).where(Agent.id == agent_id).with_for_update())).first()
            if row is None:
                continue
            homes = list(row.persona.get("home_channels") or [])
            if not homes or channel_name in homes:
                continue  # following everything already, or this one
            persona = {**row.persona, "home_channels": [*homes, channel_name]}
            updated = (await tx.conn.execute(update(Agent).where(Agent.id == agent_id).values(persona=persona, updated_at=func.now())
                                             .returning(Agent))).one()
            user_row = (await tx.conn.execute(select(User).where(User.id == agent_id))).one()
            await _emit(tx, E.AGENT_UPDATE, agent_object(updated, user_row, sim_speed=platform.settings.sim_speed))


_SAVE_MOODS = text("""
    UPDATE agents AS a SET mood = CAST(x.mood AS jsonb), mood_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:moods AS text[])) AS x(id, mood) WHERE a.id = x.id
""")


async def save_moods(platform: Platform, moods: dict[int, dict[str, Any]]) -> None:
    """The moods the tick leader saves every few seconds: one statement, however many agents read
    a toned message in a large channel (their registry version is left alone: no reload)."""
    if not moods:
        return
    ids = sorted(moods)  # one lock order for every save
    async with platform.transaction() as tx:
        await tx.conn.execute(_SAVE_MOODS, {"ids": ids, "moods": [orjson.dumps(moods[i]).decode() for i in ids]})


async def set_resting(platform: Platform, agent_id: int, until: datetime | None) -> None:
    async with platform.transaction() as tx:
        await tx.conn.execute(update(Agent).where(Agent.id == agent_id).values(resting_until=until))


async def record_llm_calls(platform: Platform, calls: list[dict[str, Any]]) -> None:
    if calls:
        async with platform.transaction() as tx:
            await tx.conn.execute(insert(LlmCall), [{"id": new_id(), **c} for c in calls])


TURN_ERROR_MAX = 300  # agent_turns.error's length


def turn_error(error: Any) -> str | None:
    """A turn's reason for failing as stored: words for an administrator, on one line, cut to the
    column (None when there is none)."""
    if error is None:
        return None
    words = " ".join(str(error).split())
    if not words:
        return None
    return words if len(words) <= TURN_ERROR_MAX else words[:TURN_ERROR_MAX - 1] + "…"


async def record_turns(platform: Platform, turns: list[dict[str, Any]]) -> None:
    """Stores a batch of turn records (the worker's dicts: the row's columns). A turn that
    failed may say why under "error" (e.g. "the model did not answer in 30 s"); the dashboard
    shows each agent's last one."""
    if turns:
        rows = [{"id": new_id(), **t, "error": turn_error(t.get("error"))} for t in turns]  # every row has the key: one executemany
        async with platform.transaction() as tx:
            await tx.conn.execute(insert(AgentTurn), rows)


def llm_call_object(r: Any) -> dict[str, Any]:
    return {"id": str(r.id), "agent_id": shapes.sid(r.agent_id), "guild_id": shapes.sid(r.guild_id), "task": r.task,
            "backend": r.backend, "model": r.model, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "latency_ms": r.latency_ms, "outcome": r.outcome, "fallback_step": r.fallback_step, "error": r.error,
            "created_at": shapes.iso(r.created_at)}


def turn_object(r: Any) -> dict[str, Any]:
    return {"id": str(r.id), "agent_id": shapes.sid(r.agent_id), "guild_id": shapes.sid(r.guild_id),
            "channel_id": shapes.sid(r.channel_id), "trigger": r.trigger, "event_position": r.event_position,
            "outcome": r.outcome, "message_id": shapes.sid(r.message_id), "llm_ms": r.llm_ms, "total_ms": r.total_ms,
            "error": r.error, "created_at": shapes.iso(r.created_at)}


async def _recent(platform: Platform, me: AuthUser, table: Any, shape: Any, *, agent_id: int | None, guild_id: int | None,
                  before: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest records first (LLM calls or turns), by agent and/or society, paged by id."""
    require_admin(me)
    query = select(table).order_by(table.id.desc()).limit(limit)
    if agent_id is not None:
        query = query.where(table.agent_id == agent_id)
    if guild_id is not None:
        query = query.where(table.guild_id == guild_id)
    if before is not None:
        query = query.where(table.id < before)
    async with platform.read() as conn:
        return [shape(r) for r in (await conn.execute(query)).all()]


async def list_llm_calls(platform: Platform, me: AuthUser, **where: Any) -> list[dict[str, Any]]:
    return await _recent(platform, me, LlmCall, llm_call_object, **where)


async def list_turns(platform: Platform, me: AuthUser, **where: Any) -> list[dict[str, Any]]:
    return await _recent(platform, me, AgentTurn, turn_object, **where)


async def society_channels(platform: Platform, guild_ids: list[int]) -> list[Any]:
    """The text channels and threads of these societies, with their last message, for the workers' state."""
    if not guild_ids:
        return []
    async with platform.read() as conn:
        return list((await conn.execute(
            select(Channel.id, Channel.guild_id, Channel.name, Channel.topic, Channel.last_message_id, Channel.parent_id, Channel.type,
                   Channel.permission_overwrites)
            .where(Channel.guild_id.in_(guild_ids), Channel.type.in_((0, 11, 12))))).all())


CLOSED_DENY = int(P.SEND_MESSAGES | P.SEND_MESSAGES_IN_THREADS | P.CREATE_PUBLIC_THREADS | P.CREATE_PRIVATE_THREADS)


def channel_closed(overwrites: Any, guild_id: int) -> bool:
    """A channel closed to the society (a scenario's close_channel): @everyone (the guild's id)
    may not post in it. Agents leave it alone rather than be refused."""
    for o in overwrites or []:
        if int(o.get("id", 0)) == guild_id and int(o.get("deny", 0)) & int(P.SEND_MESSAGES):
            return True
    return False
