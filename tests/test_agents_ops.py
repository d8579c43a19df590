"""Operating the agents: the CLI's registry commands and the rq jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from redis import Redis
from rq import Queue
from sqlalchemy import text

from townsquare.platform.actions import agents
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.run import queue_name

from .helpers import World, name, person
from .test_agents_api import PERSONA


def _cli(settings: Settings, services: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
           "TOWNSQUARE_DATA_DIR": str(settings.data_dir), "TOWNSQUARE_LOG_LEVEL": "WARNING", "CHROMA_URL": settings.chroma_url or ""}
    return subprocess.run([sys.executable, "-m", "townsquare.platform.cli", *args], env=env, capture_output=True, text=True, timeout=120)


async def test_cli_manages_agents(world: World, settings: Settings, services: Any, tmp_path: Any) -> None:
    await person(world.platform, is_admin=True)
    persona_file = tmp_path / "persona.yaml"
    agent_name = name("Cli")
    persona_file.write_text(f"name: {agent_name}\nbio: Made from the command line.\ninterests: [chess]\n")
    created = _cli(settings, services, "agents", "create", str(world.guild_id), str(persona_file))
    assert created.returncode == 0, created.stderr
    agent_id = int(created.stdout.split("id=")[1])
    assert _cli(settings, services, "agents", "pause", str(agent_id), "--reason", "maintenance").returncode == 0
    listed = _cli(settings, services, "agents", "list", "--guild", str(world.guild_id))
    assert agent_name in listed.stdout and "paused" in listed.stdout and "maintenance" in listed.stdout
    changed = _cli(settings, services, "agents", "set", str(agent_id), "bio=A chess player now", "traits={extraversion: 0.9}")
    assert changed.returncode == 0, changed.stderr
    assert _cli(settings, services, "agents", "resume", str(agent_id)).returncode == 0
    async with world.platform.read() as conn:
        row = (await conn.execute(text("SELECT persona, state FROM agents WHERE id = :i"), {"i": agent_id})).one()
    assert row.state == "active" and row.persona["bio"] == "A chess player now" and row.persona["traits"]["extraversion"] == 0.9
    bad = _cli(settings, services, "agents", "set", str(agent_id), "traits={extraversion: 7}")
    assert bad.returncode != 0
    assert _cli(settings, services, "agents", "delete", str(agent_id)).returncode == 0


async def test_prune_job_runs_on_rq(platform: Platform, settings: Settings, services: Any, world: World) -> None:
    admin = await person(platform, is_admin=True)
    from townsquare.platform.actions.users import authenticate

    me = await authenticate(platform, "Bearer", admin.token)
    agent = await agents.do_create_agent(platform, me, world.guild_id, agents.check_persona({**PERSONA, "name": name("Old")}))
    await agents.record_llm_calls(platform, [{"agent_id": int(agent["id"]), "guild_id": world.guild_id, "task": "reply",
                                              "backend": "local", "model": "m", "latency_ms": 5, "outcome": "ok"}] * 2)
    async with platform.transaction() as tx:  # one of them is old
        await tx.conn.execute(text("UPDATE llm_calls SET created_at = now() - interval '40 days' WHERE id = "
                                   "(SELECT min(id) FROM llm_calls WHERE agent_id = :a)"), {"a": int(agent["id"])})
    connection = Redis.from_url(services.redis_url)
    queue = Queue(queue_name(settings), connection=connection)
    job = queue.enqueue("townsquare.worker.jobs.maintenance.prune_records", keep_days=30.0)
    # a real rq worker process, in burst mode (it stops when the queue is empty); it finds the
    # services through its environment, as under `up`
    env = {**os.environ, "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_DATA_DIR": str(settings.data_dir),
           "CHROMA_URL": settings.chroma_url or "",
           "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
    done = subprocess.run([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", services.redis_url, queue.name], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    job.refresh()
    assert job.is_finished, done.stderr
    # (a worker started by another test may have queued a prune before ours: the effect is what counts)
    assert set(job.return_value()) == {"llm_calls", "agent_turns"}
    remaining = await agents.list_llm_calls(platform, me, agent_id=int(agent["id"]), guild_id=None, before=None, limit=10)
    assert len(remaining) == 1
