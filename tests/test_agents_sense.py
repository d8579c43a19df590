"""The turn pipeline end to end through the real bundled model: a person @mentions an agent with a
question in a village channel and that agent answers it, as a reply, in its own voice, after
the plan, the transcript prompt and the quality gate (with real sentence embeddings)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from townsquare.agents.turn.gate import GateContext, judge
from townsquare.platform.actions import agents
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.relevance import embedding_text_relevance
from townsquare.worker.runtime.worker import AgentWorker

from .helpers import RunningServer, name, wait_for
from .test_worker import (
    _auth,
    bundled_model_for,
    replies_to,
    society_with_human,
    worker_settings,
)


async def test_a_persons_question_is_answered_by_that_agent_in_its_own_voice(platform: Platform, settings: Settings,
                                                                                server: RunningServer, client: httpx.AsyncClient) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    me = await _auth(platform, admin)
    worker = None
    async with bundled_model_for(platform, admin, guild_id) as model_url:
        try:
            s = worker_settings(settings, server, model_url, gate_relevance_floor=0.12)
            worker = AgentWorker(s, platform, name=name("w"), text_relevance=embedding_text_relevance())
            await worker.start()
            agent = cast[0]  # the village's baker
            # a question about herself (what she knows of the world is said as it is, without the model)
            question = "what do you like to bake most?"
            asked = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> {question}"},
                                       headers=human.headers)).json()
            found = await wait_for(lambda: replies_to(client, human, general, asked["id"], agent["id"]), timeout=240, interval=0.5)
            reply = found[0]
            text: str = reply["content"]
            assert reply["author"]["id"] == agent["id"] and reply["message_reference"]["message_id"] == asked["id"]
            # in its own voice: the gate's own checks, run again on what was posted, and plain ones
            others_names = [a["name"] for a in cast if a["id"] != agent["id"]]
            assert judge(text, GateContext(own_name=agent["name"], members=others_names, answering=question)).ok, text
            assert not re.match(r"^\s*\**[A-Z][\w.' -]{0,40}\**\s*:", text), text
            assert agent["name"].split()[0].lower() not in text.lower(), text

            async def recorded() -> Any:
                calls = await agents.list_llm_calls(platform, me, agent_id=int(agent["id"]), guild_id=None, before=None, limit=20)
                turns = await agents.list_turns(platform, me, agent_id=int(agent["id"]), guild_id=None, before=None, limit=20)
                turn = next((t for t in turns if t["message_id"] == reply["id"]), None)
                return (calls, turn) if calls and turn else None

            calls, turn = await wait_for(recorded, timeout=20)
            assert turn["trigger"] == "mention" and turn["outcome"] == "posted"
            assert any(c["backend"] == "local" and c["completion_tokens"] > 0 for c in calls)
            # every call the gate turned down says why
            assert all(c["error"].startswith("gate:") for c in calls if c["outcome"] == "rejected")
        finally:
            if worker is not None:
                await worker.stop()
