"""Test helpers: a real uvicorn server on a free loopback port, and small worlds."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from townsquare.platform.actions import guilds, users
from townsquare.platform.actions.context import Platform
from townsquare.platform.api.app import create_app
from townsquare.platform.api.server import TownsquareServer, uvicorn_options
from townsquare.platform.core.config import Settings


async def drop_installation(settings: Settings, database_url: str, redis_url: str) -> None:
    """Removes what one installation keeps in the shared servers: its PostgreSQL schema and its Redis keys."""
    from redis.asyncio import Redis
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{settings.database_schema}" CASCADE'))
    await engine.dispose()
    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    app: Any
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def platform(self) -> Platform:
        return self.app.state.platform

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_healthy(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Until a server started as a subprocess answers /health; fails at once if it exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"the server exited at start: {err!r}" if err else "the server exited at start")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the server at {url} did not answer /health within {timeout:.0f} s")


def start_server(settings: Settings, database_url: str, redis_url: str, *, uvicorn_overrides: dict[str, Any] | None = None,
                 **overrides: Any) -> RunningServer:
    port = free_port()
    s = settings.model_copy(update={"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}", **overrides})
    app = create_app(s, database_url=database_url, redis_url=redis_url)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, loop="asyncio", lifespan="on",
                            **{**uvicorn_options(s), **(uvicorn_overrides or {})})
    server = TownsquareServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    return RunningServer(f"http://127.0.0.1:{port}", app, server, thread)


def name(prefix: str = "u") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


@dataclass
class Actor:
    id: int
    token: str
    bot: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"{'Bot' if self.bot else 'Bearer'} {self.token}"}


@dataclass
class World:
    platform: Platform
    client: httpx.AsyncClient
    owner: Actor
    alice: Actor
    bob: Actor
    bot: Actor
    guild_id: int
    general_id: int
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def create(cls, platform: Platform, client: httpx.AsyncClient) -> "World":
        owner = await person(platform)
        alice = await person(platform)
        bob = await person(platform)
        bot = await make_bot(platform)
        guild = await guilds.do_create_guild(platform, owner.id, name="Test society")
        gid = int(guild["id"])
        for actor in (alice, bob, bot):
            async with platform.transaction() as tx:
                await guilds.add_member(tx, gid, actor.id)
        return cls(platform, client, owner, alice, bob, bot, gid, int(guild["system_channel_id"]))

    async def send(self, actor: Actor, content: str, channel_id: int | None = None, **extra: Any) -> dict[str, Any]:
        r = await self.client.post(f"/api/v10/channels/{channel_id or self.general_id}/messages", json={"content": content, **extra},
                                   headers=actor.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def channel(self, name_: str = "room", **values: Any) -> int:
        r = await self.client.post(f"/api/v10/guilds/{self.guild_id}/channels", json={"name": name_, **values}, headers=self.owner.headers)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


async def person(platform: Platform, **extra: Any) -> Actor:
    row, token = await users.do_register(platform, username=name("p"), password="correct horse battery", **extra)
    return Actor(row.id, token)


async def make_bot(platform: Platform) -> Actor:
    row, token = await users.do_create_bot(platform, owner_id=None, username=name("bot"))
    return Actor(row.id, token, bot=True)


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def assert_discord_error(r: httpx.Response, status: int | None = None, code: int | None = None) -> dict[str, Any]:
    """A 4xx in Discord's JSON error shape: {"message": str, "code": int, optional "errors"}."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    if status is not None:
        assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("content-type", "").startswith("application/json"), (r.headers, r.text)
    body = r.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"], body
    assert isinstance(body.get("code"), int) and not isinstance(body["code"], bool), body
    assert set(body) <= {"message", "code", "errors"}, body
    if "errors" in body:
        assert isinstance(body["errors"], dict) and body["errors"], body
    if code is not None:
        assert body["code"] == code, body
    return body
