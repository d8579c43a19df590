"""Real services for the suite: the machine's PostgreSQL and Redis when DATABASE_URL /
REDIS_URL are set, embedded ones otherwise. Each session works in its own PostgreSQL schema
and Redis key prefix, and drops them at the end. The agents' memory is a real Chroma server
(`townsquare memory serve`, as `up` runs it) on the session's folder."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from townsquare.platform.actions.context import Platform
from townsquare.platform.api.app import build_platform, close_platform
from townsquare.platform.core.config import Settings
from townsquare.platform.db.migrate import upgrade
from townsquare.platform.services.embedded import resolve_services

from .helpers import RunningServer, World, drop_installation, free_port, start_server


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="townsquare-test-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def services(data_dir: Path):  # type: ignore[no-untyped-def]
    """Configured services from the environment, or embedded ones in the session's folder."""
    base = Settings(data_dir=data_dir / "services", database_url=os.environ.get("DATABASE_URL"), redis_url=os.environ.get("REDIS_URL"))
    return resolve_services(base)


@pytest.fixture(scope="session")
def chroma(data_dir: Path) -> Iterator[str]:
    """Chroma's server on the session's folder, started the way `up` starts it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "memory", "serve", "--port", str(port),
                             "--path", str(data_dir / "chroma")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the Chroma server did not start")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def settings(services, data_dir: Path, chroma: str) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    tag = secrets.token_hex(4)
    settings = Settings(
        data_dir=data_dir / "app", database_url=services.database_url, redis_url=services.redis_url, chroma_url=chroma,
        database_schema=f"ts_test_{tag}", redis_prefix=f"ts:test:{tag}:", rate_limit_scale=1000.0,
        log_json=True, log_level="WARNING", event_publish_poll_seconds=0.05,
        # the fake LLM's lines are about nothing: the gate's off-topic test is exercised on its own
        # (test_turn.py) and through the real model (test_agents_sense.py)
        gate_relevance_floor=0.0,
    )
    upgrade(services.database_url, settings.database_schema)
    yield settings
    import asyncio

    asyncio.run(drop_installation(settings, services.database_url, services.redis_url))


@pytest.fixture(scope="session")
def server(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(settings, services.database_url, services.redis_url)
    yield running
    running.stop()


@pytest.fixture(scope="session")
async def platform(settings: Settings, services, server: RunningServer) -> AsyncIterator[Platform]:  # type: ignore[no-untyped-def]
    """The action layer on the test's own loop (for setting up worlds quickly)."""
    p = await build_platform(settings.model_copy(update={"public_url": server.url}), services.database_url, services.redis_url)
    yield p
    await close_platform(p)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
async def world(platform: Platform, client: httpx.AsyncClient) -> World:
    """A fresh guild owned by a person, with two more people and a bot as members."""
    return await World.create(platform, client)


# The web UI's browser fixtures (Chromium through Playwright)
from .browser import browser, web  # noqa: E402,F401
