"""The world, run: the society clock releases news, calendar events are attended, routines
decide who is around which channel, and turns take their subjects from it (agents/world).

Every worker keeps the worlds of the societies it runs and knows which news is out (it asks
PostgreSQL about items that are due and not known to be out yet). The tick leader releases the
due items through the action layer (platform/actions/news.py: a nonce per item, so a release
happens once whichever worker or restart tries it) and records attendance: an agent whose
routine (or the event's list) puts it at an event while it is on remembers having been there,
once (a Redis set per occurrence).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...agents.memory.model import Kind, Memory, memory_id
from ...agents.mind.clock import Clock, SimClock
from ...agents.mind.policy import AgentInfo, ChannelState
from ...agents.world.facts import Fact, local_knowledge
from ...agents.world.files import society_world
from ...agents.world.life import WorldTime, current, due_news, presence, whereabouts, world_time
from ...agents.world.model import World
from ...agents.world.replies import Aside, aside_for
from ...agents.world.subjects import Subject, pick_subject, situation, world_lines
from ...platform.actions import news
from ...platform.actions.context import Platform

log = logging.getLogger("townsquare.worker")

RELEASES_PER_TICK = 3  # a worker that was down catches up a few items at a time, oldest first
SYNC_EVERY = 5.0  # seconds between a worker's looks at which due news is out
ATTENDED_TTL = 8 * 86_400  # seconds a record of who attended an occurrence is kept (in Redis)
EVENT_IMPORTANCE = 6.0  # notable (memory/news.py): an event one went to may be brought up later


@dataclass
class SocietyWorld:
    world: World
    founded_at: float
    released: dict[str, int] = field(default_factory=dict)  # item id -> its simulated minute
    raised: dict[str, int] = field(default_factory=dict)  # subject -> the simulated minute an opener last brought it up
    synced: bool = False


class WorldRuntime:
    def __init__(self, platform: Platform, redis: Any, prefix: str, sim: SimClock, clock: Clock,
                 memories: Callable[[], Any], loader: Callable[[str], World | None] = society_world) -> None:
        self.platform, self.redis, self.prefix, self.sim, self.clock = platform, redis, prefix, sim, clock
        self._memories, self._loader = memories, loader
        self.worlds: dict[int, SocietyWorld] = {}
        self._missing: set[tuple[int, str]] = set()
        self._next_sync = 0.0

    # --- what the worker knows ---

    def load(self, societies: dict[int, dict[str, Any]], founded: Callable[[dict[str, Any]], float]) -> None:
        """The worlds of these societies (at each registry refresh; the file may have changed)."""
        for guild_id, society in societies.items():
            world = self._loader(society["name"])
            known = self.worlds.get(guild_id)
            if world is None:
                self.worlds.pop(guild_id, None)
            elif known is None or known.world is not world:
                self.worlds[guild_id] = SocietyWorld(world, founded(society), dict(known.released) if known else {},
                                                     dict(known.raised) if known else {})
        for gone in set(self.worlds) - set(societies):
            del self.worlds[gone]

    def time(self, guild_id: int) -> WorldTime | None:
        sw = self.worlds.get(guild_id)
        return world_time(self.sim, sw.founded_at, sw.world.first_day) if sw else None

    def presence(self, agent: AgentInfo, channel: ChannelState) -> float:
        sw = self.worlds.get(agent.guild_id)
        if sw is None or channel.dm_recipients is not None:
            return 1.0
        return presence(sw.world, agent.persona.name, channel.parent or channel.name, self.time(agent.guild_id))  # type: ignore[arg-type]

    @staticmethod
    def _follows(agent: AgentInfo) -> Callable[[str], bool]:
        homes = agent.persona.home_channels
        return lambda name: not homes or name in homes

    def subject(self, agent: AgentInfo, channel: ChannelState, rng: random.Random, said: Sequence[str] = ()) -> Subject | None:
        """An opener's subject from the world; `said`: the channel's recent lines (what was just talked about)."""
        sw = self.worlds.get(agent.guild_id)
        if sw is None:
            return None
        t = self.time(agent.guild_id)
        found = pick_subject(sw.world, agent.persona.name, channel.parent or channel.name, t,  # type: ignore[arg-type]
                             sw.released, self._follows(agent), rng, said, sw.raised)
        if found is not None and t is not None:
            sw.raised[found.content] = t.total  # the society has heard it now: another channel is not asked the same
        return found

    def lines(self, agent: AgentInfo) -> list[str]:
        sw = self.worlds.get(agent.guild_id)
        if sw is None:
            return []
        return world_lines(sw.world, agent.persona.name, self.time(agent.guild_id), sw.released, self._follows(agent))  # type: ignore[arg-type]

    def aside(self, agent: AgentInfo, heard: str, own_recent: Sequence[str] = ()) -> Aside | None:
        """What the agent's own day says about a line it heard (replies.py)."""
        sw = self.worlds.get(agent.guild_id)
        if sw is None:
            return None
        return aside_for(sw.world, agent.persona.name, self.time(agent.guild_id), heard, sw.released,  # type: ignore[arg-type]
                         self._follows(agent), own_recent)

    def local(self, agent: AgentInfo) -> tuple[Fact, ...]:
        """What the agent knows of its world now: places, the calendar, routines (facts.py)."""
        sw = self.worlds.get(agent.guild_id)
        return local_knowledge(sw.world, agent.persona.name, self.time(agent.guild_id)) if sw else ()

    def news_source(self, guild_id: int) -> str | None:
        """The display name the society's news is posted under ("Town Crier"), if it has a world."""
        sw = self.worlds.get(guild_id)
        return sw.world.news_source if sw is not None else None

    def situation(self, agent: AgentInfo) -> str | None:
        sw = self.worlds.get(agent.guild_id)
        return situation(sw.world, agent.persona.name, self.time(agent.guild_id)) if sw else None  # type: ignore[arg-type]

    # --- news ---

    async def sync(self, channel_id: Callable[[int, str], int | None]) -> None:
        """Learns which due items are out (released by any worker, before a restart too)."""
        if time.monotonic() < self._next_sync:
            return
        self._next_sync = time.monotonic() + SYNC_EVERY
        for guild_id, sw in self.worlds.items():
            t = self.time(guild_id)
            due = [n for n in due_news(sw.world, t) if n.id not in sw.released] if t else []  # type: ignore[arg-type]
            wanted = {news.item_nonce(guild_id, n.id): (n, channel_id(guild_id, n.channel)) for n in due}
            wanted = {k: v for k, v in wanted.items() if v[1] is not None}
            if not wanted:
                continue
            out = await news.released(self.platform, guild_id, [(c, k) for k, (_, c) in wanted.items()])  # type: ignore[misc]
            for nonce in out:
                sw.released[wanted[nonce][0].id] = wanted[nonce][0].at

    async def release(self, channel_id: Callable[[int, str], int | None], paused: set[int]) -> int:
        """The tick leader posts the items whose time has come; returns how many it posted."""
        posted = 0
        for guild_id, sw in self.worlds.items():
            t = self.time(guild_id)
            if guild_id in paused or t is None:
                continue
            for item in [n for n in due_news(sw.world, t) if n.id not in sw.released][:RELEASES_PER_TICK]:
                target = channel_id(guild_id, item.channel)
                if target is None:
                    if (guild_id, item.channel) not in self._missing:
                        self._missing.add((guild_id, item.channel))
                        log.warning("news item %s: the society has no channel #%s", item.id, item.channel)
                    continue
                _, new = await news.do_publish_news(self.platform, None, guild_id, target, item.content, item.title or None,
                                                    nonce=news.item_nonce(guild_id, item.id), item_id=item.id,
                                                    source=sw.world.news_source)
                sw.released[item.id] = item.at
                posted += int(new)
        return posted

    # --- events ---

    async def attend(self, agents: list[AgentInfo], active: Callable[[AgentInfo], bool]) -> int:
        """Agents at an event that is on now remember being there (once per occurrence); returns
        how many memories were written."""
        written = 0
        for guild_id, sw in self.worlds.items():
            t = self.time(guild_id)
            if t is None:
                continue
            for occ in current(sw.world, t):
                place = sw.world.place(occ.event.place)
                there = [a for a in agents if a.guild_id == guild_id and active(a)
                         and (here := whereabouts(sw.world, a.persona.name, t)).event is not None and here.event.key == occ.key]
                if not there:
                    continue
                key = f"{self.prefix}world:attended:{guild_id}:{occ.key}"
                for agent in there:
                    if not await self.redis.sadd(key, agent.id):
                        continue  # remembered already (this worker or another)
                    await self.redis.expire(key, ATTENDED_TTL)
                    now = self.clock.now()
                    text = f"I was at {occ.event.title}" + (f" at {place.name}" if place else "") + \
                        (f" ({occ.event.description.rstrip('.')})" if occ.event.description else "")
                    memory = Memory(id=memory_id(agent.id, "event", guild_id, occ.key), agent_id=agent.id, kind=Kind.OBSERVATION,
                                    text=text, importance=EVENT_IMPORTANCE, created_at=now, last_access=now,
                                    source=f"event:{occ.key}")
                    try:
                        await self._memories().add(memory)
                        written += 1
                    except Exception as exc:  # noqa: BLE001 - tried again on the next tick
                        await self.redis.srem(key, agent.id)
                        log.warning("could not remember an event: %s", exc)
        return written
