"""The slow side of memory and the graph, on a real rq worker: reflections (triggered by the
importance an agent takes in), consolidation, and the worker's schedule of jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
from redis import Redis
from rq import Queue

from townsquare.agents.memory.model import Kind, Memory, memory_id
from townsquare.agents.memory.remember import open_memories
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.run import queue_name
from townsquare.worker.runtime.worker import AgentWorker

from .fakellm import FakeLLM
from .helpers import RunningServer, name, wait_for
from .test_worker import society_with_human, worker_settings


def run_job(settings: Settings, services: Any, llm_url: str, path: str, **kwargs: Any) -> Any:
    """Enqueues one job and runs a real rq worker process in burst mode, which finds the services
    through its environment (as under `up`); returns the finished job."""
    job = Queue(queue_name(settings), connection=Redis.from_url(services.redis_url)).enqueue(path, **kwargs)
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
           "TOWNSQUARE_DATA_DIR": str(settings.data_dir), "CHROMA_URL": settings.chroma_url or "", "OLLAMA_HOST": llm_url}
    done = subprocess.run([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", services.redis_url, queue_name(settings)],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.is_finished, done.stderr
    return job


async def test_importance_triggers_a_reflection_written_by_an_rq_job(platform: Platform, settings: Settings, services: Any,
                                                                     server: RunningServer, client: httpx.AsyncClient) -> None:
    llm = FakeLLM(reply=lambda messages: "I have learned that my neighbours care a lot about the harbour festival.").start()
    queued: list[tuple[str, dict[str, Any]]] = []
    worker = AgentWorker(worker_settings(settings, server, llm.url, memory_reflect_threshold=8.0), platform, name=name("w"),
                         enqueue=lambda path, **kwargs: queued.append((path, kwargs)))
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    await worker.start()
    try:
        for text in ("Big news: the harbour festival is cancelled this year!", "The council will vote on it tomorrow night."):
            await client.post(f"/api/v10/channels/{general}/messages", json={"content": text}, headers=human.headers)

        async def reflecting() -> Any:
            return [k["agent_id"] for path, k in queued if path.endswith("memory.reflect") and k["agent_id"] in {int(a["id"]) for a in cast}]

        agents_reflecting = await wait_for(reflecting, timeout=20)

        async def scheduled() -> bool:  # the tick leader (once an earlier test's lease lapsed) schedules the rest
            return {"townsquare.worker.jobs.graph.snapshot_graph", "townsquare.worker.jobs.memory.consolidate",
                    "townsquare.worker.jobs.maintenance.prune_records"} <= {path for path, _ in queued}

        await wait_for(scheduled, timeout=20)
    finally:
        await worker.stop()
    agent_id = agents_reflecting[0]
    try:
        job = run_job(settings, services, llm.url, "townsquare.worker.jobs.memory.reflect", agent_id=agent_id)
        assert job.result["source"] == "llm"
        reflections = await open_memories(settings).recent(agent_id, 10, kinds=[Kind.REFLECTION])
        assert [m.text for m in reflections] == ["I have learned that my neighbours care a lot about the harbour festival."]
    finally:
        llm.stop()


async def test_a_reflection_without_a_usable_model_comes_from_the_record(platform: Platform, settings: Settings, services: Any,
                                                                         server: RunningServer, client: httpx.AsyncClient) -> None:
    llm = FakeLLM(reply=lambda messages: "My best friend Zed said so.").start()  # unusable: not an "I ..." insight
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent_id = int(cast[1]["id"])
    memories = open_memories(settings)
    now = time.time()
    await memories.add(Memory(id=memory_id(agent_id, "t", 1), agent_id=agent_id, kind=Kind.OBSERVATION,
                              text="Rosa said in #garden: the roses need pruning before the frost", importance=5, created_at=now,
                              last_access=now, about=(human.id,)))
    try:
        job = run_job(settings, services, llm.url, "townsquare.worker.jobs.memory.reflect", agent_id=agent_id)
        assert job.result["source"] == "record", job.result
        written = (await memories.recent(agent_id, 5, kinds=[Kind.REFLECTION]))[0]
        assert written.text.startswith("Lately I have been talking most with") and "roses" in written.text
    finally:
        llm.stop()


async def test_consolidation_job_bounds_every_agents_memory(platform: Platform, settings: Settings, services: Any,
                                                            client: httpx.AsyncClient) -> None:
    admin, guild_id, cast, human, general = await society_with_human(platform, client)
    agent_id = int(cast[2]["id"])
    memories = open_memories(settings)
    now = time.time()
    memories.store.add([Memory(id=memory_id(agent_id, "c", i), agent_id=agent_id, kind=Kind.OBSERVATION,
                               text=f"Someone said in #market: apples are cheap today, number {i}", importance=2,
                               created_at=now - 7200 + i, last_access=now - 7200 + i, channel_id=general) for i in range(40)])
    job = run_job(settings, services, "http://127.0.0.1:9", "townsquare.worker.jobs.memory.consolidate", max_per_agent=25)
    assert job.result[str(agent_id)]["after"] <= 25
    assert memories.store.count(agent_id) <= 25
    assert any(m.kind is Kind.SUMMARY for m in memories.store.find(agent_id))
