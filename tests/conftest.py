"""Real services for the suite: the machine's PostgreSQL and Redis when DATABASE_URL /
REDIS_URL are set, embedded ones otherwise. Each session works in its own PostgreSQL schema
and Redis key prefix, and drops them at the end."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from townsquare.platform.actions.context import Platform
from townsquare.platform.api.app import build_platform, close_platform
from townsquare.platform.core.config import Settings
from townsquare.platform.db.migrate import upgrade
from townsquare.platform.services.embedded import resolve_services

from .helpers import RunningServer, World, start_server


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
def settings(services, data_dir: Path) -> Iterator[Settings]:  # type: ignore[no-untyped-def]
    tag = secrets.token_hex(4)
    settings = Settings(
        data_dir=data_dir / "app", database_url=services.database_url, redis_url=services.redis_url,
        database_schema=f"ts_test_{tag}", redis_prefix=f"ts:test:{tag}:", rate_limit_scale=1000.0,
        log_json=True, log_level="WARNING", event_publish_poll_seconds=0.05,
    )
    upgrade(services.database_url, settings.database_schema)
    yield settings
    import asyncio

    async def cleanup() -> None:
        engine = create_async_engine(services.database_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
        await engine.dispose()
        from redis.asyncio import Redis

        redis = Redis.from_url(services.redis_url)
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    asyncio.run(cleanup())


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
