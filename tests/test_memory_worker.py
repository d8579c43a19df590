"""Memory and relationships inside the running society: what agents see becomes memory, what
they remember reaches their prompts (also after a restart), the invented-tie guard holds on
posted replies, and relationships are kept in PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from townsquare.agents.memory.model import Kind, Memory, memory_id
from townsquare.agents.memory.remember import open_memories
from townsquare.platform.actions import agents, relationships
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.worker import AgentWorker

from .fakellm import FakeLLM, distinct_reply
from .helpers import RunningServer, name, wait_for
from .test_worker import _auth, replies_to, society_with_human, worker_settings


@pytest.fixture
def llm() -> Any:
    fake = FakeLLM(reply=distinct_reply).start()  # distinct lines: none is a near-duplicate of another
    yield fake
    fake.stop()


async def _user_name(client: httpx.AsyncClient, actor: Any) -> str:
    me = (await client.get("/api/v10/users/@me", headers=actor.headers)).json()
    return me.get("global_name") or me["username"]


async def test_what_an_agent_saw_reaches_its_prompt_and_survives_a_restart(platform: Platform, settings: Settings,
                                                                          server: RunningServer, client: httpx.AsyncClient,
                                                                          llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent = cast[0]
    s = worker_settings(settings, server, llm.url)
    worker = AgentWorker(s, platform, name=name("w"))
    await worker.start()
    try:
        told = (await client.post(f"/api/v10/channels/{general}/messages",
                                  json={"content": "I work at the lighthouse and I love sea shanties."}, headers=human.headers)).json()
        memories = open_memories(s)

        async def remembered() -> Any:
            found = [m for m in await memories.search(int(agent["id"]), "lighthouse", k=5) if "lighthouse" in m.memory.text]
            return found if {m.memory.kind.value for m in found} >= {"observation", "fact"} else None

        found = await wait_for(remembered, timeout=20)
        kinds = {m.memory.kind.value for m in found}
        assert "observation" in kinds and "fact" in kinds
        assert any(m.memory.source == f"message:{told['id']}" for m in found)
    finally:
        await worker.stop()
    # a new worker (a restart): the memory is still there and reaches the prompt when the topic comes up
    llm.calls.clear()
    worker = AgentWorker(s, platform, name=name("w"))
    await worker.start()
    try:
        asked = (await client.post(f"/api/v10/channels/{general}/messages",
                                   json={"content": f"<@{agent['id']}> do you remember where I work, the lighthouse?"},
                                   headers=human.headers)).json()
        await wait_for(lambda: replies_to(client, human, general, asked["id"], agent["id"]), timeout=40)
        # the prompt of the reply itself (an ambient turn of the same agent may come first and recall other things)
        prompt = next(c["messages"][0]["content"] for c in llm.calls
                      if agent["name"] in c["messages"][0]["content"] and "do you remember where I work" in c["messages"][-1]["content"])
        assert "remembers:" in prompt and "lighthouse" in prompt.split("remembers:")[1]
        assert "About the people here:" in prompt
    finally:
        await worker.stop()


async def test_replies_never_claim_ties_the_record_does_not_support(platform: Platform, settings: Settings,
                                                                   server: RunningServer, client: httpx.AsyncClient) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent = cast[1]
    human_name = await _user_name(client, human)
    llm = FakeLLM(reply=lambda messages: f"My best friend {human_name} always asks that. The bread is warm today.").start()
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        asked = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> how is your bread?"},
                                   headers=human.headers)).json()
        await wait_for(lambda: replies_to(client, human, general, asked["id"], agent["id"]), timeout=20)
        history = (await client.get(f"/api/v10/channels/{general}/messages?limit=50", headers=human.headers)).json()
        said = [m["content"] for m in history if m["author"]["id"] in {a["id"] for a in cast}]
        # the invented friendship was cut out of every line (the rest is posted, by the agent asked or
        # by another who chimed in first, the asked one then not repeating it; on a busy machine the
        # asked one's turn may also end in its plan's own line)
        assert said and not any("friend" in line for line in said), said
    finally:
        await worker.stop()
        llm.stop()


async def test_relationships_are_kept_in_postgresql_and_loaded_back(platform: Platform, settings: Settings, server: RunningServer,
                                                                    client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent = cast[2]
    s = worker_settings(settings, server, llm.url)
    worker = AgentWorker(s, platform, name=name("w"))
    await worker.start()
    try:
        for text in ("thank you, that is wonderful!", "you are lovely, great idea"):
            await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> {text}"},
                              headers=human.headers)
            await asyncio.sleep(0.3)

        async def saved() -> Any:
            rows = await relationships.list_relationships(platform, await _auth(platform, admin), int(agent["id"]))
            row = next((r for r in rows if r["user"]["id"] == str(human.id)), None)
            return row if row and row["outgoing"] and row["outgoing"]["affinity"] > 0 and row["incoming"] else None

        row = await wait_for(saved, timeout=25)
        assert row["outgoing"]["familiarity"] > 0 and row["outgoing"]["described"]
        r = await client.get(f"/api/v10/townsquare/agents/{agent['id']}/relationships", headers=admin.headers)
        assert r.status_code == 200 and any(e["user"]["id"] == str(human.id) for e in r.json())
        assert (await client.get(f"/api/v10/townsquare/agents/{agent['id']}/relationships", headers=human.headers)).status_code == 403
    finally:
        await worker.stop()
    fresh = AgentWorker(s, platform, name=name("w"))
    await fresh.refresh_registry(force=True)
    bond = fresh.state.relations.get(int(agent["id"]), human.id)
    assert bond is not None and bond.affinity > 0
    await fresh.chain.close()
    await fresh.api.close()


async def test_the_llm_rates_new_memories_when_it_is_free(platform: Platform, settings: Settings, server: RunningServer,
                                                          client: httpx.AsyncClient) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    llm = FakeLLM(reply=lambda messages: "8" if "rate this memory" in messages[-1]["content"] else "Nice weather today, friends.").start()
    s = worker_settings(settings, server, llm.url, memory_rate_idle_seconds=0.5)
    worker = AgentWorker(s, platform, name=name("w"))
    await worker.start()
    try:
        await client.post(f"/api/v10/channels/{general}/messages", json={"content": "Big news: the old mill burned down last night!"},
                          headers=human.headers)
        memories = open_memories(s)

        async def rated() -> Any:
            for agent in cast:
                found = [m for m in await memories.recent(int(agent["id"]), 10) if "mill" in m.text and m.rated]
                if found:
                    return found[0]
            return None

        memory = await wait_for(rated, timeout=60)
        assert memory.importance == 8.0
        async def recorded() -> Any:
            calls = await agents.list_llm_calls(platform, await _auth(platform, admin), agent_id=memory.agent_id, guild_id=None,
                                                before=None, limit=50)
            return any(c["task"] == "rate" and c["outcome"] == "ok" for c in calls)

        await wait_for(recorded, timeout=10)  # the call is on record (flushed every second)
    finally:
        await worker.stop()
        llm.stop()


async def test_what_is_on_an_agents_mind_is_passed_on_as_it_was_said(platform: Platform, settings: Settings, server: RunningServer,
                                                                      client: httpx.AsyncClient, llm: FakeLLM) -> None:
    """A notable thing one agent heard in #garden is what it opens a quiet channel with, quoted
    and named, without the model: how news travels from one conversation to the next."""
    admin, guild_id, cast, human, general = await society_with_human(platform, client, size=1)
    agent = cast[0]
    s = worker_settings(settings, server, llm.url, revive_idle_seconds=1.0, mind_share=1.0)
    now = time.time()
    heard = "Sam Carter said in #garden: The allotment gate code changes to 4512 on Monday, pass it on."
    await open_memories(s).add(Memory(id=memory_id(int(agent["id"]), "test", now), agent_id=int(agent["id"]), kind=Kind.OBSERVATION,
                                      text=heard, importance=9.0, created_at=now, last_access=now, source="test"))
    worker = AgentWorker(s, platform, name=name("w"))
    await worker.start()
    try:
        async def passed_on() -> Any:
            turns = await agents.list_turns(platform, await _auth(platform, admin), agent_id=None, guild_id=guild_id, before=None, limit=50)
            for t in turns:
                if t["trigger"] == "revive" and t["outcome"] == "posted":
                    m = (await client.get(f"/api/v10/channels/{t['channel_id']}/messages/{t['message_id']}", headers=admin.headers)).json()
                    if "4512" in m["content"]:
                        return m
            return None

        message = await wait_for(passed_on, timeout=60)
        assert "Sam" in message["content"] and "#garden" in message["content"]
        assert '"The allotment gate code changes to 4512 on Monday, pass it on."' in message["content"]
        channels = (await client.get(f"/api/v10/guilds/{guild_id}/channels", headers=admin.headers)).json()
        assert next(c["name"] for c in channels if c["id"] == message["channel_id"]) != "garden"  # #garden heard it already
        assert not any("4512" in c["messages"][0]["content"] for c in llm.calls)  # no model: the words are Sam's
    finally:
        await worker.stop()
