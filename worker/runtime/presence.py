"""The agents' presence. Agents act through REST and hold no gateway session, so the worker
that leads the ticks keeps a lease on the presence of every agent it knows (all societies):
online when active, idle when resting, dnd when muted, none when paused (the agent or its
society) or deleted; with the agent's mood as a Discord custom status ("🙂 content"). Only the
coarse label leaves the worker: the mood's numbers stay on the admin API.

A lease lasts `LEASE_SECONDS` and is renewed every `RENEW_SECONDS`, so the agents of a worker
that died read as offline within a minute (and the next leader announces it when it sweeps).
Between renewals nothing is written unless what an agent shows changed.
"""

from __future__ import annotations

import logging
from typing import Any

from ...agents.mind.clock import Clock
from ...agents.mind.mood import Mood
from ...agents.mind.policy import AgentInfo, SocietyState
from ...platform.gateway.presence import PresenceWrite, Reader, write_presences

log = logging.getLogger("townsquare.worker.presence")

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

    async def refresh(self, state: SocietyState) -> list[dict[str, Any]]:
        """Called every tick by the leader: writes every agent's lease (one Redis step) when they
        are due for renewal or when what an agent shows changed; returns the PRESENCE_UPDATEs sent."""
        now = self.clock.now()
        moods = {a.id: state.mood(a.id) for a in state.agents.values()}
        shown = {a.id: (agent_status(state, a), moods[a.id].label()) for a in state.agents.values()}
        if shown == self._shown and now - self._renewed_at < RENEW_SECONDS:
            return []
        until = int((now + LEASE_SECONDS) * 1000)
        writes = [PresenceWrite(agent_id, status, [custom_status(moods[agent_id])] if status != "offline" else [], until=until)
                  for agent_id, (status, _label) in shown.items()]
        writes += [PresenceWrite(gone, "offline", until=until) for gone in self._shown.keys() - shown.keys()]  # deleted
        updates = await write_presences(self.redis, self.prefix, self.read, writes, now_ms=int(now * 1000), sweep=True)
        self._shown, self._renewed_at = shown, now
        if updates:
            log.debug("agents' presence changed", extra={"updates": len(updates)})
        return updates
