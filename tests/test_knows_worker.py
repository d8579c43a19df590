"""What a persona knows, through the worker: a person's question to an agent is answered from the
statement that fits (a model line that strays from it gives way to it), and a question the agent
cannot answer is sent, honestly, to a member of the channel who knows, who then answers it. Real sentence embeddings
(the bundled MiniLM); the model's content is a stand-in that never says the right thing."""

from __future__ import annotations

from typing import Any

import httpx

from townsquare.platform.core.config import Settings
from townsquare.platform.actions.context import Platform
from townsquare.worker.runtime.relevance import embedding_text_relevance
from townsquare.worker.runtime.worker import AgentWorker

from .fakellm import FakeLLM
from .helpers import RunningServer, name, wait_for
from .test_worker import channel_named, replies_to, society_with_human, worker_settings


def by_first(cast: list[dict[str, Any]], first: str) -> dict[str, Any]:
    return next(a for a in cast if a["name"].split()[0] == first)


async def test_a_question_is_answered_from_what_the_agent_knows_or_sent_to_who_knows(
        platform: Platform, settings: Settings, server: RunningServer, client: httpx.AsyncClient) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    garden = await channel_named(client, admin, guild_id, "garden")
    llm = FakeLLM(reply=lambda messages: "What a lovely sunny day it is in the village today.").start()
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"), text_relevance=embedding_text_relevance())
    await worker.start()
    try:
        ines, maren = by_first(cast, "Ines"), by_first(cast, "Maren")
        asked = (await client.post(f"/api/v10/channels/{garden}/messages",
                                   json={"content": f"<@{ines['id']}> my basil keeps dying, any idea why?"}, headers=human.headers)).json()
        answer = (await wait_for(lambda: replies_to(client, human, garden, asked["id"], ines["id"]), timeout=30))[0]["content"]
        assert "warm windowsill" in answer and "sunny day" not in answer, answer  # what she knows, not the stray line

        asked = (await client.post(f"/api/v10/channels/{general}/messages",
                                   json={"content": f"<@{maren['id']}> why is the church bell cracked?"}, headers=human.headers)).json()
        answer = (await wait_for(lambda: replies_to(client, human, general, asked["id"], maren["id"]), timeout=30))[0]["content"]
        # the baker does not know; Tobias, who follows #general and knows the bells' history, does,
        # and he is asked: the hand-off mentions him, and he answers the person from what he knows
        tobias = by_first(cast, "Tobias")
        assert f"<@{tobias['id']}>" in answer and "sunny day" not in answer, answer
        handed = (await wait_for(lambda: replies_to(client, human, general, None, tobias["id"]), timeout=60))[0]["content"]
        assert "frost" in handed and "sunny day" not in handed, handed
    finally:
        await worker.stop()
        llm.stop()
