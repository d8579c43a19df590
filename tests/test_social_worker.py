"""Social actions through the platform, as a user sees them: agents react with emoji, move a
long back-and-forth into a thread, write privately to a friend, and open a channel for a
shared interest, inviting their friends (who then follow it)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from townsquare.agents.mind.relations import Bond
from townsquare.platform.actions import agents
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.worker import AgentWorker

from .fakellm import FakeLLM, distinct_reply
from .helpers import RunningServer, name, wait_for
from .test_worker import _auth, society_with_human, worker_settings

@pytest.fixture
def llm() -> Any:
    fake = FakeLLM(reply=distinct_reply).start()
    yield fake
    fake.stop()


async def test_agents_react_and_move_a_long_exchange_into_a_thread(platform: Platform, settings: Settings, server: RunningServer,
                                                                    client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    worker = AgentWorker(worker_settings(settings, server, llm.url, reaction_rate=20.0, thread_after=2), platform, name=name("w"))
    await worker.start()
    try:
        cheer = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": "What a wonderful day, thank you all!"},
                                   headers=human.headers)).json()

        async def reacted() -> Any:
            message = (await client.get(f"/api/v10/channels/{general}/messages/{cheer['id']}", headers=human.headers)).json()
            return message.get("reactions")

        reactions = await wait_for(reacted, timeout=20)
        assert 1 <= sum(r["count"] for r in reactions) <= 2
        # a back-and-forth: the human asks, the agent answers, the human answers the answer -> the agent goes to a thread
        agent = cast[0]
        asked = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> how are the loaves?"},
                                   headers=human.headers)).json()

        async def answer_to(message_id: str) -> Any:
            history = (await client.get(f"/api/v10/channels/{general}/messages?limit=50", headers=human.headers)).json()
            return next((m for m in history if m["author"]["id"] == agent["id"]
                         and (m.get("message_reference") or {}).get("message_id") == message_id), None)

        first = await wait_for(lambda: answer_to(asked["id"]), timeout=20)
        follow = (await client.post(f"/api/v10/channels/{general}/messages",
                                    json={"content": "really? tell me more", "message_reference": {"message_id": first["id"]}},
                                    headers=human.headers)).json()

        async def threaded() -> Any:
            try:
                thread = (await client.get(f"/api/v10/channels/{follow['id']}", headers=human.headers)).json()
            except httpx.HTTPError:
                return None
            if thread.get("parent_id") != str(general):
                return None
            inside = (await client.get(f"/api/v10/channels/{thread['id']}/messages", headers=human.headers)).json()
            return [m for m in inside if m["author"]["id"] == agent["id"]] or None

        inside = await wait_for(threaded, timeout=20)
        assert inside[0]["content"].startswith(f"<@{human.id}>") and any(u["id"] == str(human.id) for u in inside[0]["mentions"])
    finally:
        await worker.stop()


async def test_agents_write_to_friends_and_open_channels_for_shared_interests(platform: Platform, settings: Settings,
                                                                              server: RunningServer, client: httpx.AsyncClient,
                                                                              llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        ids = [int(a["id"]) for a in cast]
        by_id = {int(a["id"]): a for a in cast}
        # three villagers share gardening now (two already did): a group with a common interest
        me = await _auth(platform, admin)
        gardener = cast[0]
        await agents.do_update_persona(platform, me, ids[0], {"interests": [*gardener["persona"]["interests"], "gardening"]}, "test")

        async def updated() -> Any:
            return "gardening" in worker.state.agents[ids[0]].persona.interests

        await wait_for(updated, timeout=15)
        # everyone in the village likes everyone: the policy picks who writes and who opens what
        for a in ids:
            for b in ids:
                if a != b:
                    worker.state.relations.load(a, b, Bond(affinity=0.7, familiarity=0.7, trust=0.7), guild_id)
        worker.state.last_outreach[guild_id] = worker.state.last_founding[guild_id] = float("-inf")  # due now
        decisions = [d for d in [*worker.policy.outreach(worker.state, 1.0), *worker.policy.founding(worker.state, 1.0, 16)]
                     if worker.state.agents[d.agent_id].guild_id == guild_id]  # other tests' societies may be due too (a slow start)
        assert {d.trigger for d in decisions} == {"reach", "found"}
        outcomes = [await worker._initiative(d) for d in decisions]
        assert outcomes == ["posted", "posted"], outcomes
        reach = next(d for d in decisions if d.trigger == "reach")
        found = next(d for d in decisions if d.trigger == "found")
        # the private message arrived in a DM between the two
        writer_token = worker.tokens[reach.agent_id]
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            dm = (await c.post("/api/v10/users/@me/channels", json={"recipient_id": str(reach.invitees[0])},
                               headers={"Authorization": f"Bot {writer_token}"})).json()
            said = (await c.get(f"/api/v10/channels/{dm['id']}/messages", headers={"Authorization": f"Bot {writer_token}"})).json()
        assert said and said[-1]["author"]["id"] == str(reach.agent_id)  # the first line is the writer's (the friend may answer)
        # the new channel exists, the opening line invites the friends, and they follow it now
        channels = (await client.get(f"/api/v10/guilds/{guild_id}/channels", headers=admin.headers)).json()
        room = next(c for c in channels if c["name"] == found.subject.replace(" ", "-").lower())
        opening = (await client.get(f"/api/v10/channels/{room['id']}/messages", headers=admin.headers)).json()
        assert opening[-1]["author"]["id"] == str(found.agent_id)  # the founder's welcome comes first
        assert {u["id"] for u in opening[-1]["mentions"]} == {str(i) for i in found.invitees}
        for member in (found.agent_id, *found.invitees):
            homes = (await agents.get_agent(platform, me, member))["persona"]["home_channels"]
            assert room["name"] in homes, (by_id[member]["name"], homes)
    finally:
        await worker.stop()
