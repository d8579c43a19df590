"""The agent worker end to end: perception from the stream, turn-taking, the brain through the
real `ollama` client (a scripted stand-in server for content), actions through the public API."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from townsquare.agents.society.persona import load_society
from townsquare.platform.actions import agents, guilds
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.platform.events.publisher import decode_entry
from townsquare.worker.runtime.worker import GROUP, AgentWorker

from .fakellm import FakeLLM, speaker
from .helpers import Actor, RunningServer, name, person, wait_for


@pytest.fixture
def llm() -> Any:
    fake = FakeLLM().start()
    yield fake
    fake.stop()


async def found(platform: Platform, admin: Actor, society: str = "village", *, size: int | None = None,
                topics: list[str] | None = None) -> tuple[int, list[dict[str, Any]]]:
    """A fresh copy of a bundled society (unique names; its first `size` agents; `topics`, its
    revival topics instead of the file's), and its agents."""
    spec = load_society(society)
    spec = spec.model_copy(update={"agents": [a.model_copy(update={"name": f"{a.name.split()[0]} {name('')[:6]}"})
                                              for a in spec.agents[:size]],
                                   **({"revival_topics": topics} if topics is not None else {})})
    guild_id = await agents.do_found_society(platform, admin.id, spec, name("society"))
    me = await _auth(platform, admin)
    return guild_id, await agents.list_agents(platform, me, guild_id)


async def _auth(platform: Platform, actor: Actor) -> Any:
    from townsquare.platform.actions.users import authenticate

    return await authenticate(platform, "Bearer", actor.token)


def worker_settings(settings: Settings, server: RunningServer, llm_url: str, **extra: Any) -> Settings:
    return settings.model_copy(update={"ollama_host": llm_url, "public_url": server.url, "revive_idle_seconds": 1e6,
                                       "worker_claim_idle_ms": 1500, "memory_rate_idle_seconds": 1e6, **extra})


async def channel_named(client: httpx.AsyncClient, admin: Actor, guild_id: int, channel: str) -> int:
    channels = (await client.get(f"/api/v10/guilds/{guild_id}/channels", headers=admin.headers)).json()
    return int(next(c["id"] for c in channels if c["name"] == channel))


async def society_with_human(platform: Platform, client: httpx.AsyncClient, *, admin: Actor | None = None,
                             size: int | None = None) -> tuple[Actor, int, list[dict[str, Any]], Actor, int]:
    """An administrator (a new one unless given), a fresh village society, a human member, and its #general."""
    admin = admin or await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin, size=size)
    human = await person(platform)
    async with platform.transaction() as tx:
        await guilds.add_member(tx, guild_id, human.id)
    return admin, guild_id, cast, human, await channel_named(client, admin, guild_id, "general")


async def agent_where(platform: Platform, admin: Actor, agent_id: str, **expected: str) -> dict[str, Any] | None:
    """The agent's API object once its fields have the expected values, else None."""
    obj = await agents.get_agent(platform, await _auth(platform, admin), int(agent_id))
    return obj if all(obj[k] == v for k, v in expected.items()) else None


async def replies_to(client: httpx.AsyncClient, human: Actor, channel_id: int, message_id: str | None, author: str) -> list[dict[str, Any]]:
    """`author`'s replies to that message (to any message, when `message_id` is None)."""
    history = (await client.get(f"/api/v10/channels/{channel_id}/messages?limit=50", headers=human.headers)).json()
    return [m for m in history if m["author"]["id"] == author and (m.get("message_reference") or {}).get("message_id")
            and message_id in (None, m["message_reference"]["message_id"])]


async def test_a_human_mention_is_answered_through_the_platform(platform: Platform, settings: Settings, server: RunningServer,
                                                                client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        agent = cast[0]
        sent = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> good morning, any news?"},
                                  headers=human.headers)).json()
        found_replies = await wait_for(lambda: replies_to(client, human, general, sent["id"], agent["id"]), timeout=20)
        assert len(found_replies) == 1 and "Honestly, " in found_replies[0]["content"]  # after the plan's first words
        # the reply's own prompt (an ambient turn of the same agent may have come first): the
        # persona, the human's line, and the plan (answer the question) as a stage direction
        prompt = next(c["prompt"] for c in llm.calls if speaker(c) == agent["name"] and "good morning, any news?" in c["prompt"])
        assert agent["name"] in prompt.split("\n")[1] and "answers" in prompt and f"\n{agent['name']}:" in prompt.split("(")[-1]

        async def recorded() -> Any:
            calls = await agents.list_llm_calls(platform, await _auth(platform, admin), agent_id=int(agent["id"]), guild_id=None,
                                                before=None, limit=10)
            turns = await agents.list_turns(platform, await _auth(platform, admin), agent_id=int(agent["id"]), guild_id=None,
                                            before=None, limit=10)
            return (calls, turns) if calls and turns else None

        calls, turns = await wait_for(recorded, timeout=10)
        assert calls[0]["outcome"] == "ok" and calls[0]["backend"] == "local" and calls[0]["completion_tokens"] == 12
        assert turns[0]["trigger"] == "mention" and turns[0]["outcome"] == "posted" and turns[0]["message_id"] == found_replies[0]["id"]
    finally:
        await worker.stop()


async def test_paused_agents_and_societies_stay_silent_and_muted_ones_too(platform: Platform, settings: Settings,
                                                                         server: RunningServer, client: httpx.AsyncClient,
                                                                         llm: FakeLLM) -> None:
    admin = await person(platform, is_admin=True)
    me = await _auth(platform, admin)
    guild_id, cast = await found(platform, admin)
    human = await person(platform)
    async with platform.transaction() as tx:
        await guilds.add_member(tx, guild_id, human.id)
    general = await channel_named(client, admin, guild_id, "general")
    await agents.do_set_state(platform, me, int(cast[0]["id"]), "paused", "test")
    await agents.do_set_state(platform, me, int(cast[1]["id"]), "muted", "test")
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        for agent in cast[:2]:
            await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> are you there?"},
                              headers=human.headers)
        await asyncio.sleep(2.5)
        await agents.do_set_society_paused(platform, me, guild_id, True, "quiet hours")
        await wait_for(lambda: _true_when(guild_id in worker.state.paused_guilds), timeout=10)
        last = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{cast[2]['id']}> hello?"},
                                  headers=human.headers)).json()
        await asyncio.sleep(2.5)
        history = (await client.get(f"/api/v10/channels/{general}/messages", headers=human.headers)).json()
        # the paused and the muted agent never spoke (others may have picked the questions up)
        assert not [m for m in history if m["author"]["id"] in (cast[0]["id"], cast[1]["id"])]
        # nor thought of speaking: no prompt was written as them (others' prompts may name them in a memory)
        assert not [c for c in llm.calls if speaker(c) in (cast[0]["name"], cast[1]["name"])]
        # nobody speaks in a paused society
        assert history[0]["id"] == last["id"]
    finally:
        await worker.stop()


async def test_a_dm_to_an_agent_is_answered_and_a_stopping_worker_finishes_its_turn(
        platform: Platform, settings: Settings, server: RunningServer, client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin)
    human = await person(platform)
    async with platform.transaction() as tx:
        await guilds.add_member(tx, guild_id, human.id)
    agent = cast[1]
    dm = (await client.post("/api/v10/users/@me/channels", json={"recipient_id": agent["id"]}, headers=human.headers)).json()
    llm.delay = 1.5
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    stopped = False
    try:
        asked = (await client.post(f"/api/v10/channels/{dm['id']}/messages", json={"content": "hi, are you free for a chat?"},
                                   headers=human.headers)).json()
        await wait_for(lambda: _true_when(len(llm.calls) >= 1), timeout=15)
        await worker.stop()  # graceful: the turn in flight completes before the worker goes
        stopped = True
        history = (await client.get(f"/api/v10/channels/{dm['id']}/messages", headers=human.headers)).json()
        assert [m["author"]["id"] for m in history] == [agent["id"], str(human.id)]
        stream = f"{settings.redis_prefix}events"
        mine = await platform.redis.xpending_range(stream, GROUP, min="-", max="+", count=100, consumername=worker.name)
        left = [decode_entry(fields) for p in mine for _, fields in await platform.redis.xrange(stream, p["message_id"], p["message_id"])]
        # the question was handled and acknowledged; events read as the worker stopped (its own reply's, news the
        # leader released, other societies' talk on a busy machine) may stay pending, for the next worker to claim
        assert not [e for e in left if e.get("type") == "MESSAGE_CREATE" and e["data"].get("id") == asked["id"]], left
    finally:
        if not stopped:
            await worker.stop()


async def test_quiet_channels_are_revived_and_token_budgets_hold(platform: Platform, settings: Settings, server: RunningServer,
                                                                 client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin = await person(platform, is_admin=True)
    # topics that are subjects, not questions: the model words the opener (a question of the
    # society's is asked as it is, without the model, and spends no tokens)
    guild_id, cast = await found(platform, admin, topics=["the first thing worth planting this spring", "bread at the Saturday market",
                                                          "the church bells ringing at odd hours"])
    # every channel is new and quiet: with a short idle threshold the tick leader opens topics
    worker = AgentWorker(worker_settings(settings, server, llm.url, revive_idle_seconds=1.0, agent_tokens_per_minute=62), platform,
                         name=name("w"))
    await worker.start()
    try:
        async def opened() -> Any:
            turns = await agents.list_turns(platform, await _auth(platform, admin), agent_id=None, guild_id=guild_id, before=None,
                                            limit=50)
            posted = [t for t in turns if t["trigger"] == "revive" and t["outcome"] == "posted"]
            throttled = [t for t in turns if t["outcome"] == "throttled"]
            calls = await agents.list_llm_calls(platform, await _auth(platform, admin), agent_id=None, guild_id=guild_id, before=None,
                                                limit=200)
            spent = {c["agent_id"] for c in calls}  # who used tokens (posted, or rejected as a near-duplicate)
            return (posted, throttled, spent) if posted and throttled else None

        # a loaded machine (a CI run beside a whole society's stack) took over 40 s to get here once
        posted, throttled, spent = await wait_for(opened, timeout=120)
        message = (await client.get(f"/api/v10/channels/{posted[0]['channel_id']}/messages/{posted[0]['message_id']}",
                                    headers=admin.headers)).json()
        assert message["author"]["id"] == posted[0]["agent_id"] and message["nonce"].startswith("rv")
        # the opener prompt asked for a new conversation on a society topic
        assert any("asks everyone:" in c["messages"][0]["content"] for c in llm.calls)
        # 62 tokens a minute is one call (50 + 12) per agent: a second turn within the minute is throttled, not run
        assert {t["agent_id"] for t in throttled} <= spent
    finally:
        await worker.stop()


async def test_a_reaction_cheers_the_author_up(platform: Platform, settings: Settings, server: RunningServer,
                                               client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent = cast[3]
    said = (await client.post(f"/api/v10/townsquare/agents/{agent['id']}/messages",
                              json={"channel_id": str(general), "content": "fresh loaves at noon"}, headers=admin.headers)).json()
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        before = worker.state.mood(int(agent["id"])).valence
        r = await client.put(f"/api/v10/channels/{general}/messages/{said['id']}/reactions/%F0%9F%91%8D/@me", headers=human.headers)
        assert r.status_code == 204, r.text
        await wait_for(lambda: _true_when(worker.state.mood(int(agent["id"])).valence > before + 0.03), timeout=10)
        assert worker.state.relations.affinity(int(agent["id"]), human.id) > 0  # and it warms to the one who reacted
    finally:
        await worker.stop()


@asynccontextmanager
async def bundled_model_for(platform: Platform, admin: Actor, guild_id: int) -> AsyncIterator[str]:
    """`townsquare model serve` (the real bundled model) on a free port, its URL; meanwhile only
    the society `guild_id` is awake: the earlier tests' societies would share the one model."""
    from .helpers import free_port

    port = free_port()
    model = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "model", "serve", "--port", str(port)],
                             env={**os.environ, "TOWNSQUARE_LOG_LEVEL": "WARNING"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = await _auth(platform, admin)
    others = [int(s["guild_id"]) for s in await agents.list_societies(platform, me) if int(s["guild_id"]) != guild_id and not s["paused"]]
    try:
        async def model_up() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{port}/api/version")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_for(model_up, timeout=60)
        for other in others:
            await agents.do_set_society_paused(platform, me, other, True, "test: one society only")
        yield f"http://127.0.0.1:{port}"
    finally:
        for other in others:
            await agents.do_set_society_paused(platform, me, other, False, None)
        model.terminate()
        model.wait(timeout=30)


async def test_the_real_bundled_model_opens_a_quiet_channel(platform: Platform, settings: Settings, server: RunningServer,
                                                            client: httpx.AsyncClient) -> None:
    """The revival path end to end with the real model: `townsquare model serve`, the official
    ollama client, the planner, the transcript prompt and the gate, a message posted through the platform.
    (The society's topics are subjects, not questions: a question of the society's is asked as
    it is, without the model.)"""
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin, topics=["the first thing worth planting this spring", "bread at the Saturday market"])
    worker = None
    async with bundled_model_for(platform, admin, guild_id) as model_url:
        try:
            worker = AgentWorker(worker_settings(settings, server, model_url, revive_idle_seconds=1.0), platform, name=name("w"))
            await worker.start()

            async def opened() -> Any:
                turns = await agents.list_turns(platform, await _auth(platform, admin), agent_id=None, guild_id=guild_id, before=None,
                                                limit=50)
                return next((t for t in turns if t["trigger"] == "revive" and t["outcome"] == "posted"), None)

            turn = await wait_for(opened, timeout=180, interval=0.5)
            message = (await client.get(f"/api/v10/channels/{turn['channel_id']}/messages/{turn['message_id']}",
                                        headers=admin.headers)).json()
            text = message["content"]
            assert len(text) >= 4 and "channel has been quiet" not in text.lower() and not text.lower().startswith("you are")
            calls = await agents.list_llm_calls(platform, await _auth(platform, admin), agent_id=int(turn["agent_id"]), guild_id=None,
                                                before=None, limit=20)
            assert any(c["model"] == "smollm2:135m" and c["outcome"] == "ok" and c["completion_tokens"] > 0 for c in calls)
        finally:
            if worker is not None:
                await worker.stop()


async def _true_when(value: bool) -> bool:
    return value


async def test_every_backend_down_means_resting_not_garbage(platform: Platform, settings: Settings, server: RunningServer,
                                                            client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    llm.fail_status = 500
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        agent = cast[0]
        for i in range(3):  # a failed call per turn: the third opens the breaker (3 failures) and the agent rests
            await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> what do you like most about your work, {i}?"},
                              headers=human.headers)
        obj = await wait_for(lambda: agent_where(platform, admin, agent["id"], status="resting"), timeout=15)
        assert obj["state"] == "active" and obj["resting_until"]
        history = (await client.get(f"/api/v10/channels/{general}/messages", headers=human.headers)).json()
        assert {m["author"]["id"] for m in history} == {str(human.id)}  # no error text was posted
    finally:
        await worker.stop()


async def test_a_misbehaving_agent_is_paused_with_a_reason(platform: Platform, settings: Settings, server: RunningServer,
                                                           client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    llm.delay = 3.0  # longer than the turn's time budget
    worker = AgentWorker(worker_settings(settings, server, llm.url, turn_timeout_seconds=0.5, agent_max_failures=2), platform,
                         name=name("w"))
    await worker.start()
    try:
        agent = cast[0]
        for i in range(2):
            await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> how are you, question {i}?"},
                              headers=human.headers)
        obj = await wait_for(lambda: agent_where(platform, admin, agent["id"], state="paused"), timeout=20)
        assert "failed turns" in obj["state_reason"] and "time budget" in obj["state_reason"]
        others = await agents.list_agents(platform, await _auth(platform, admin), guild_id)
        assert all(a["state"] == "active" for a in others if a["id"] != agent["id"])  # the society goes on
    finally:
        await worker.stop()


def _worker_process(settings: Settings, services: Any, server: RunningServer, llm_url: str, worker_name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
           "TOWNSQUARE_DATA_DIR": str(settings.data_dir), "OLLAMA_HOST": llm_url, "TOWNSQUARE_PUBLIC_URL": server.url,
           "CHROMA_URL": settings.chroma_url or "",
           "TOWNSQUARE_WORKER_CLAIM_IDLE_MS": "1500", "TOWNSQUARE_TURN_TIMEOUT_SECONDS": "8", "TOWNSQUARE_REVIVE_IDLE_SECONDS": "1000000",
           "TOWNSQUARE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "worker", "--no-migrate"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _consumers(platform: Platform, settings: Settings) -> int:
    try:
        return len(await platform.redis.xinfo_consumers(f"{settings.redis_prefix}events", GROUP))
    except Exception:  # noqa: BLE001 - no group yet
        return 0


async def test_kill_9_mid_turn_another_worker_finishes_and_nothing_is_duplicated(
        platform: Platform, settings: Settings, services: Any, server: RunningServer, client: httpx.AsyncClient, llm: FakeLLM) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    llm.delay = 30.0  # the first worker's turn hangs in the LLM call
    before = await _consumers(platform, settings)
    first = _worker_process(settings, services, server, llm.url, name("a"))
    second = None
    try:
        await wait_for(lambda: _count_above(platform, settings, before), timeout=60)
        agent = cast[0]
        sent = (await client.post(f"/api/v10/channels/{general}/messages", json={"content": f"<@{agent['id']}> tell me a story"},
                                  headers=human.headers)).json()
        await wait_for(lambda: _true_when(len(llm.calls) >= 1), timeout=30)  # mid-turn: the LLM call is in flight
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        llm.delay = 0.0
        second = _worker_process(settings, services, server, llm.url, name("b"))
        found_replies = await wait_for(lambda: replies_to(client, human, general, sent["id"], agent["id"]), timeout=60)
        await asyncio.sleep(3)  # anything duplicated would have shown up by now
        assert len(await replies_to(client, human, general, sent["id"], agent["id"])) == 1 == len(found_replies)
        pending = await platform.redis.xpending(f"{settings.redis_prefix}events", GROUP)
        assert pending["pending"] == 0 or await wait_for(
            lambda: _no_pending(platform, settings), timeout=15)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def _count_above(platform: Platform, settings: Settings, before: int) -> bool:
    return await _consumers(platform, settings) > before


async def _no_pending(platform: Platform, settings: Settings) -> bool:
    return (await platform.redis.xpending(f"{settings.redis_prefix}events", GROUP))["pending"] == 0
