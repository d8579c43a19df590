"""Agents' presence: the leading worker leases it (agents hold no gateway session). Driven with a
fake clock through the worker's own refresher, seen through a real gateway: online with the mood
as a custom status, idle when resting, dnd when muted, gone when paused or deleted; an expired
lease reads as offline and is announced when swept; an unchanged refresh announces nothing; a
gateway session of the agent itself wins over the lease."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from townsquare.agents.mind.clock import FakeClock
from townsquare.agents.mind.mood import MOOD_EMOJI
from townsquare.platform.actions import agents, guilds
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.presence import LEASE_SECONDS, RENEW_SECONDS
from townsquare.worker.runtime.worker import AgentWorker

from .gwclient import GatewayClient
from .helpers import Actor, RunningServer, name, person, start_server, wait_for
from .test_worker import _auth, found, worker_settings


class Society:
    def __init__(self, admin: Actor, guild_id: int, cast: list[dict[str, Any]], human: Actor) -> None:
        self.admin, self.guild_id, self.cast, self.human = admin, guild_id, cast, human
        self.ids = [int(a["id"]) for a in cast]


@pytest.fixture
async def society(platform: Platform) -> Society:
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin)
    human = await person(platform)
    async with platform.transaction() as tx:
        await guilds.add_member(tx, guild_id, human.id)
    return Society(admin, guild_id, cast, human)


@pytest.fixture
async def open_workers() -> AsyncIterator[list[AgentWorker]]:
    made: list[AgentWorker] = []
    yield made
    for worker in made:
        await worker.chain.close()
        await worker.api.close()


async def leader(open_workers: list[AgentWorker], platform: Platform, settings: Settings, server: RunningServer,
                 clock: FakeClock) -> AgentWorker:
    """A worker (not started: its refresher is driven by hand), with the registry loaded."""
    worker = AgentWorker(worker_settings(settings, server, "http://127.0.0.1:9"), platform, clock=clock, name=name("w"))
    open_workers.append(worker)
    return worker


async def refresh(worker: AgentWorker, society: Society) -> list[dict[str, Any]]:
    """What the tick loop does: reload the registry if it changed, then refresh (for this test's
    society only: the schema holds other tests' societies too)."""
    await worker.refresh_registry()
    for agent_id in [a for a, info in worker.state.agents.items() if info.guild_id != society.guild_id]:
        worker.state.drop_agent(agent_id)
    return await worker.presence.refresh(worker.state)


async def watcher(server: RunningServer, society: Society) -> tuple[GatewayClient, dict[str, Any]]:
    gw = GatewayClient(server.url)
    await gw.identify(society.human.token)
    while True:
        guild = (await gw.next(t="GUILD_CREATE"))["d"]
        if guild["id"] == str(society.guild_id):
            return gw, guild


async def presence_of(gw: GatewayClient, user_id: int, status: str) -> dict[str, Any]:
    """The next PRESENCE_UPDATE giving `user_id` that status (earlier ones are passed over)."""
    while True:
        frame = await gw.next(t="PRESENCE_UPDATE")
        if frame["d"]["user"]["id"] == str(user_id) and frame["d"]["status"] == status:
            return frame["d"]


async def shown(gw: GatewayClient, *wanted: tuple[int, str]) -> dict[int, dict[str, Any]]:
    """The PRESENCE_UPDATEs giving each (user, status) wanted, in whatever order they came: one
    refresh's updates are not ordered among agents."""
    async def all_seen() -> dict[int, dict[str, Any]] | None:
        found = {int(u["user"]["id"]): u for u in gw.events("PRESENCE_UPDATE") if (int(u["user"]["id"]), u["status"]) in wanted}
        return found if len(found) == len(wanted) else None

    return await wait_for(all_seen, timeout=20)


async def _true(value: bool) -> bool:
    return value


def mine(sent: list[dict[str, Any]], society: Society) -> list[tuple[str, str]]:
    """The updates about this society's agents (a refresh also sweeps other tests' old leases)."""
    return sorted((u["user"]["id"], u["status"]) for u in sent if int(u["user"]["id"]) in society.ids)


def presences(guild: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["user"]["id"]: p for p in guild["presences"]}


async def test_a_refresh_shows_agents_online_with_their_mood_and_changes_only_are_announced(
        platform: Platform, settings: Settings, server: RunningServer, society: Society, open_workers: list[AgentWorker]) -> None:
    gw, guild = await watcher(server, society)
    try:
        assert not set(presences(guild)) & {str(i) for i in society.ids}  # no worker yet: offline
        clock = FakeClock(time.time())
        worker = await leader(open_workers, platform, settings, server, clock)
        sent = await refresh(worker, society)
        assert mine(sent, society) == sorted((str(i), "online") for i in society.ids)
        first = society.ids[0]
        update = await presence_of(gw, first, "online")
        label = worker.state.mood(first).label()
        assert update["status"] == "online" and update["guild_id"] == str(society.guild_id)
        assert update["activities"] == [{"type": 4, "name": "Custom Status", "state": label, "emoji": {"name": MOOD_EMOJI[label]}}]
        assert "valence" not in str(update)  # the mood's numbers stay admin-only

        # Someone connecting now gets it in GUILD_CREATE.
        late, guild = await watcher(server, society)
        await late.close()
        shown = presences(guild)
        assert {str(i) for i in society.ids} <= set(shown)
        assert shown[str(first)]["status"] == "online" and shown[str(first)]["activities"][0]["state"] == label

        # Unchanged: nothing written before the renewal is due, nothing announced when it is.
        await wait_for(lambda: _true({u["user"]["id"] for u in gw.events("PRESENCE_UPDATE")} >= {str(i) for i in society.ids}))
        before = len(gw.events("PRESENCE_UPDATE"))
        clock.advance(5)
        assert await refresh(worker, society) == []
        clock.advance(RENEW_SECONDS)
        assert mine(await refresh(worker, society), society) == []
        # Muting is announced at once (not at the next renewal), as do-not-disturb; it is the only
        # update the member got since (the ephemeral stream is ordered).
        me = await _auth(platform, society.admin)
        await agents.do_set_state(platform, me, society.ids[1], "muted", "test")
        clock.advance(1)
        sent = await refresh(worker, society)
        assert mine(sent, society) == [(str(society.ids[1]), "dnd")]
        muted = await presence_of(gw, society.ids[1], "dnd")
        assert muted["activities"][0]["type"] == 4
        assert len(gw.events("PRESENCE_UPDATE")) == before + 1
    finally:
        await gw.close()


async def test_resting_pausing_and_deleting_change_what_members_see(
        platform: Platform, settings: Settings, server: RunningServer, society: Society, open_workers: list[AgentWorker]) -> None:
    clock = FakeClock(time.time())
    worker = await leader(open_workers, platform, settings, server, clock)
    await refresh(worker, society)
    gw, guild = await watcher(server, society)
    try:
        me = await _auth(platform, society.admin)
        resting, paused, deleted, in_paused_society = society.ids[0], society.ids[1], society.ids[2], society.ids[3]
        await agents.set_resting(platform, resting, datetime.now(timezone.utc) + timedelta(minutes=5))
        await agents.do_set_state(platform, me, paused, "paused", "test")  # the registry's version moves: reloaded
        clock.advance(1)
        await refresh(worker, society)
        gone = (await shown(gw, (resting, "idle"), (paused, "offline")))[paused]
        assert gone["activities"] == [] and gone["client_status"] == {}

        await agents.do_delete_agent(platform, me, deleted, "test")
        clock.advance(1)
        await refresh(worker, society)
        assert await platform.redis.hget(f"{settings.redis_prefix}gw:presence", str(deleted)) is None

        await agents.do_set_society_paused(platform, me, society.guild_id, True, "quiet hours")
        clock.advance(1)
        await refresh(worker, society)
        await presence_of(gw, in_paused_society, "offline")
        late, guild = await watcher(server, society)
        await late.close()
        assert not set(presences(guild)) & {str(i) for i in society.ids}
    finally:
        await gw.close()


async def test_an_expired_lease_reads_offline_and_a_sweep_announces_it(
        platform: Platform, settings: Settings, server: RunningServer, society: Society, open_workers: list[AgentWorker]) -> None:
    # A lease written a lease-length ago (its worker died since) has run out: offline for newcomers.
    stale = await leader(open_workers, platform, settings, server, FakeClock(time.time() - LEASE_SECONDS - 1))
    await refresh(stale, society)
    gw, guild = await watcher(server, society)
    try:
        assert not set(presences(guild)) & {str(i) for i in society.ids}
        # A live lease, then its worker dies; the next leader (which no longer knows the agent,
        # say it was deleted elsewhere) sweeps the expired lease and announces it.
        clock = FakeClock(time.time())
        alive = await leader(open_workers, platform, settings, server, clock)
        await refresh(alive, society)
        await presence_of(gw, society.ids[0], "online")
        successor = await leader(open_workers, platform, settings, server, FakeClock(clock.now() + LEASE_SECONDS + 1))
        swept = await successor.presence.refresh(successor.state)  # knows no agents
        assert {str(i) for i in society.ids} <= {u["user"]["id"] for u in swept if u["status"] == "offline"}
        await presence_of(gw, society.ids[0], "offline")
    finally:
        await gw.close()


async def test_with_no_worker_left_the_servers_announce_expired_leases(
        platform: Platform, settings: Settings, services: Any, server: RunningServer, society: Society,
        open_workers: list[AgentWorker]) -> None:
    # A server that sweeps often, so the test need not wait the default 15 s
    sweeping = start_server(settings, services.database_url, services.redis_url, gateway_presence_sweep_seconds=0.2)
    gw, _ = await watcher(sweeping, society)
    try:
        # The worker's lease was written a lease-length minus 2 s ago: it runs out in 2 s, and the worker is gone.
        dying = await leader(open_workers, platform, settings, server, FakeClock(time.time() - LEASE_SECONDS + 2))
        await refresh(dying, society)
        await presence_of(gw, society.ids[0], "online")
        # No worker refreshes or sweeps any more: the server itself tells its clients.
        offline = await presence_of(gw, society.ids[0], "offline")
        assert offline["activities"] == []
    finally:
        await gw.close()
        sweeping.stop()


async def test_a_gateway_session_of_the_agent_wins_over_the_lease(
        platform: Platform, settings: Settings, server: RunningServer, society: Society, open_workers: list[AgentWorker]) -> None:
    clock = FakeClock(time.time())
    worker = await leader(open_workers, platform, settings, server, clock)
    await refresh(worker, society)
    agent_id = society.ids[0]
    gw, _ = await watcher(server, society)
    own = GatewayClient(server.url)
    try:
        await own.identify(worker.tokens[agent_id], presence={"status": "idle", "activities": [], "since": None, "afk": True})
        await presence_of(gw, agent_id, "idle")
        clock.advance(RENEW_SECONDS)
        sent = await refresh(worker, society)  # the renewal leaves the session's presence alone
        assert str(agent_id) not in dict(mine(sent, society))
        late, guild = await watcher(server, society)
        await late.close()
        assert presences(guild)[str(agent_id)]["status"] == "idle"
    finally:
        await own.close()
        await gw.close()


async def test_a_renewal_of_many_agents_is_written_in_batches(platform: Platform, settings: Settings, server: RunningServer,
                                                             society: Society, open_workers: list[AgentWorker],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a society of thousands renews its leases a few hundred at a time (no long Redis
    script), and every agent is leased all the same."""
    from townsquare.worker.runtime import presence

    monkeypatch.setattr(presence, "WRITE_BATCH", 2)
    scripts: list[int] = []
    real = presence.write_presences

    async def counting(*args: Any, **kwargs: Any) -> Any:
        scripts.append(len(list(args[3])))
        return await real(*args, **kwargs)

    monkeypatch.setattr(presence, "write_presences", counting)
    clock = FakeClock(time.time())
    worker = await leader(open_workers, platform, settings, server, clock)
    sent = await refresh(worker, society)
    assert mine(sent, society) == sorted((str(i), "online") for i in society.ids)
    assert len(scripts) == -(-len(society.ids) // 2) and max(scripts) <= 2
    leases = await platform.redis.zrange(f"{settings.redis_prefix}gw:leases", 0, -1)
    assert {str(i).encode() for i in society.ids} <= set(leases)
