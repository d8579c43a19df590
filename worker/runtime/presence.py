"""The agents' presence. Agents act through REST and hold no gateway session, so the worker
that leads the ticks keeps a lease on the presence of every agent it knows (all societies):
online when active, idle when resting, dnd when muted, none when paused (the agent or its
society) or deleted; with the agent's mood as a Discord custom status ("🙂 content"). Only the
coarse label leaves the worker: the mood's numbers stay on the admin API.

A lease lasts `LEASE_SECONDS` and is renewed every `RENEW_SECONDS`, so the agents of a worker
that died read as offline within a minute (and the next leader announces it when it sweeps).
Between renewals only the agents whose state or mood was touched since the last tick (the
state's `agents.touched`), whose rest ran out, or who left are looked at, and only those whose
label changed are written: a tick costs what happened, not the size of the society. A label
that changes only as a mood relaxes over time shows at the next renewal.
"""

from __future__ import annotations

import logging
from typing import Any

from ...agents.mind.clock import Clock
from ...agents.mind.mood import Mood
from ...agents.mind.policy import AgentInfo, SocietyState
from ...platform.gateway.presence import PresenceWrite, Reader, write_presences

log = logging.getLogger("townsquare.worker.presence")

WRITE_BATCH = 500  # leases per Redis script: a renewal of 10,000 agents never holds Redis for long at once
RENEW_SECONDS = 20.0
LEASE_SECONDS = 60.0
CUSTOM_STATUS = 4  # Discord's activity type for a custom status


def agent_status(state: SocietyState, agent: AgentInfo) -> str:
    if agent.state == "paused" or agent.guild_id in state.paused_guilds:
        return "offline"
    if agent.state == "muted":
        return "dnd"
    if agent.resting_until > state.now:
        return "idle"
    return "online"


def custom_status(mood: Mood) -> dict[str, Any]:
    return {"type": CUSTOM_STATUS, "name": "Custom Status", "state": mood.label(), "emoji": {"name": mood.emoji()}}


class AgentPresence:
    def __init__(self, redis: Any, prefix: str, read: Reader, clock: Clock) -> None:
        self.redis, self.prefix, self.read, self.clock = redis, prefix, read, clock
        self._shown: dict[int, tuple[str, str]] = {}  # agent -> (status, mood label) last leased
        self._renewed_at = float("-inf")
        self._paused: set[int] = set()  # the societies paused at the last refresh

    async def refresh(self, state: SocietyState) -> list[dict[str, Any]]:
        """Called every tick by the leader: writes every agent's lease (one Redis step) when they
        are due for renewal or when what an agent shows changed; returns the PRESENCE_UPDATEs sent."""
        now = self.clock.now()
        touched, state.agents.touched = state.agents.touched, set()
        renew = now - self._renewed_at >= RENEW_SECONDS or state.paused_guilds != self._paused
        if renew:  # every agent (a society paused or resumed shows on all of its agents)
            look = list(state.agents.values())
        else:  # only what may show differently: touched, rest over (idle -> online), or gone
            rested = {i for i, (status, _) in self._shown.items() if status == "idle"}
            look = [state.agents[i] for i in touched | rested if i in state.agents]
        moods = {a.id: state.mood(a.id) for a in look}
        seen = {a.id: (agent_status(state, a), moods[a.id].label()) for a in look}
        gone = (self._shown.keys() - state.agents.keys()) if renew else {i for i in touched if i not in state.agents and i in self._shown}
        changed = seen if renew else {i: v for i, v in seen.items() if self._shown.get(i) != v}
        if not changed and not gone and not renew:
            return []
        until = int((now + LEASE_SECONDS) * 1000)
        writes = [PresenceWrite(agent_id, status, [custom_status(moods[agent_id])] if status != "offline" else [], until=until)
                  for agent_id, (status, _label) in changed.items()]
        writes += [PresenceWrite(i, "offline", until=until) for i in gone]  # deleted
        updates: list[dict[str, Any]] = []
        starts = list(range(0, len(writes), WRITE_BATCH)) or [0]
        for start in starts:  # the last batch also sweeps expired leases (the renewed ones are no longer expired)
            updates += await write_presences(self.redis, self.prefix, self.read, writes[start:start + WRITE_BATCH],
                                             now_ms=int(now * 1000), sweep=start == starts[-1])
        for i in gone:
            self._shown.pop(i, None)
        self._shown.update(changed)
        if renew:
            self._renewed_at, self._paused = now, set(state.paused_guilds)
        if updates:
            log.debug("agents' presence changed", extra={"updates": len(updates)})
        return updates
