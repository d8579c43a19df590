"""A society's world as it stands now, for the dashboard (read-only): the simulated day and
time, the events on now and coming up, the news out so far and the next items due, and where
each agent is. Computed on the same simulation clock as the workers' (every society's time of
day runs from the oldest society's founding; a society's days count from its own)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ...agents.mind.clock import SimClock, SystemClock
from ...agents.society.persona import Persona
from ...agents.world.files import society_world
from ...agents.world.life import Occurrence, WorldTime, current, due_news, upcoming, whereabouts, world_time
from ...agents.world.model import DAY_MINUTES, World, clock
from ..core.errors import UnknownGuild
from ..db.models import Agent, Society
from .agents import require_admin
from .context import Platform
from .news import list_news
from .users import AuthUser


def _occurrence(world: World, occ: Occurrence) -> dict[str, Any]:
    place = world.place(occ.event.place)
    return {"id": occ.event.id, "title": occ.event.title, "place": place.name if place else occ.event.place,
            "day": occ.day, "start": clock(occ.event.start), "end": clock(occ.event.end % DAY_MINUTES),
            "description": occ.event.description}


def _time(t: WorldTime) -> dict[str, Any]:
    return {"day": t.day, "weekday": t.weekday, "time": clock(t.minute)}


async def get_world(platform: Platform, me: AuthUser, guild_id: int) -> dict[str, Any]:
    require_admin(me)
    async with platform.read() as conn:
        row = (await conn.execute(select(Society).where(Society.guild_id == guild_id))).first()
        if row is None:
            raise UnknownGuild()
        epoch = (await conn.execute(select(func.min(Society.created_at)))).scalar()
        cast = (await conn.execute(select(Agent.id, Agent.persona).where(Agent.guild_id == guild_id).order_by(Agent.id))).all()
    world = society_world(row.name)
    if world is None:
        return {"guild_id": str(guild_id), "world": False}
    settings = platform.settings
    sim = SimClock(SystemClock(), epoch=epoch.timestamp(), speed=settings.sim_speed, start_hour=settings.sim_start_hour)
    t = world_time(sim, row.created_at.timestamp(), world.first_day)
    due = {n.id for n in due_news(world, t)}
    people = []
    for agent_id, persona in cast:
        name = Persona.model_validate(persona).name
        here = whereabouts(world, name, t)
        people.append({"agent_id": str(agent_id), "name": name, "place": here.place.name if here.place else None,
                       "doing": here.doing, "event": here.event.event.title if here.event else None})
    return {
        "guild_id": str(guild_id), "world": True, "time": _time(t), "news_source": world.news_source,
        "now": [_occurrence(world, o) for o in current(world, t)],
        "upcoming": [_occurrence(world, o) for o in upcoming(world, t, 2 * DAY_MINUTES)][:10],
        "news": await list_news(platform, me, guild_id, 20),
        "scheduled": [{"id": n.id, "title": n.title, "channel": n.channel, "day": n.day, "time": clock(n.time)}
                      for n in sorted(world.news, key=lambda n: n.at) if n.id not in due][:10],
        "agents": people,
    }
