"""Rate limits counted in Redis: per-route buckets, a global per-token limit, headers, 429."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from townsquare.platform.actions.users import login_keys
from townsquare.platform.core.config import Settings

from .helpers import RunningServer, World, name, start_server


@pytest.fixture(scope="module")
def strict_server(settings: Settings, services) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(settings, services.database_url, services.redis_url, rate_limit_scale=1.0,
                           redis_prefix=settings.redis_prefix + "strict:")
    yield running
    running.stop()


async def test_route_bucket_headers_and_429(world: World, strict_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=strict_server.url) as c:
        url = f"/api/v10/channels/{world.general_id}/messages"
        statuses = []
        for i in range(6):
            r = await c.post(url, json={"content": f"n{i}"}, headers=world.alice.headers)
            statuses.append(r.status_code)
            if r.status_code == 200:
                assert r.headers["x-ratelimit-limit"] == "5"
                assert int(r.headers["x-ratelimit-remaining"]) == 4 - i
                assert float(r.headers["x-ratelimit-reset-after"]) > 0
        assert statuses == [200] * 5 + [429]
        body = r.json()
        assert body["global"] is False and 0 < body["retry_after"] <= 5 and "message" in body
        assert r.headers["retry-after"] and r.headers["x-ratelimit-remaining"] == "0"
        # another channel is another bucket; another user has their own
        other = await world.channel("other-bucket")
        assert (await c.post(f"/api/v10/channels/{other}/messages", json={"content": "x"}, headers=world.alice.headers)).status_code == 200
        assert (await c.post(url, json={"content": "x"}, headers=world.bob.headers)).status_code == 200
        history = await c.get(url, headers=world.alice.headers)
        assert history.status_code == 200  # reading is a different route


async def test_global_limit_per_token(world: World, strict_server: RunningServer) -> None:
    import asyncio

    async with httpx.AsyncClient(base_url=strict_server.url, limits=httpx.Limits(max_connections=200)) as c:
        # 150 requests at once: far more than 50 land in the same one-second window
        responses = await asyncio.gather(*(c.get("/api/v10/users/@me", headers=world.bob.headers) for _ in range(150)))
    limited = [r for r in responses if r.status_code == 429]
    # past 50 in one second the global limit answers (the route's own bucket may too, later)
    assert any(r.json()["global"] is True and r.headers["x-ratelimit-global"] == "true" for r in limited)
    assert {r.status_code for r in responses} <= {200, 429}, [r.text for r in responses if r.status_code not in (200, 429)][:3]


async def test_login_is_limited_per_address(strict_server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=strict_server.url) as c:
        codes = [(await c.post("/api/v10/auth/login", json={"login": "nobody-here", "password": "whatever1"})).status_code
                 for _ in range(7)]
    assert codes[:5] == [401] * 5 and codes[-1] == 429


@pytest.fixture
def own_server(settings: Settings, services) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Starts strict servers on a Redis prefix of their own (their per-address buckets start empty)."""
    started: list[tuple[RunningServer, Settings]] = []

    def start(**overrides: Any) -> RunningServer:
        s = settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}{secrets.token_hex(3)}:"})
        running = start_server(s, services.database_url, services.redis_url, rate_limit_scale=1.0, **overrides)
        started.append((running, s))
        return running

    yield start
    for running, s in started:
        running.stop()
        asyncio.run(_drop_keys(services.redis_url, s.redis_prefix))


async def _drop_keys(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _rotating(i: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.{i % 250 + 1}", "X-Real-IP": f"198.51.100.{i % 250 + 1}"}


async def test_forwarded_for_is_not_believed_without_a_configured_proxy(own_server: Any) -> None:
    """By default no proxy is trusted: a local client rotating X-Forwarded-For is still one address."""
    server = own_server()
    assert server.app.state.platform.settings.forwarded_allow_ips == ""
    async with httpx.AsyncClient(base_url=server.url) as c:
        codes = [(await c.post("/api/v10/auth/login", json={"login": name("nobody"), "password": "whatever1"},
                               headers=_rotating(i))).status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429], codes


async def test_login_backoff_per_account_beside_the_per_address_limit(world: World, own_server: Any, services: Any) -> None:
    """Through a trusted proxy, each request comes from another address (the per-address limit
    cannot help): the account's own backoff refuses guesses after five failures, also the right
    password, until its period ends; then a right password clears it."""
    server = own_server(forwarded_allow_ips="127.0.0.1")
    async with httpx.AsyncClient(base_url=server.url) as c:
        me = (await c.get("/api/v10/users/@me", headers=world.alice.headers)).json()
        username = me["username"]

        async def attempt(i: int, password: str, login: str = username) -> httpx.Response:
            return await c.post("/api/v10/auth/login", json={"login": login, "password": password}, headers=_rotating(i))

        codes = [(await attempt(i, f"wrong-{i}")).status_code for i in range(6)]
        assert codes == [401] * 6, codes  # five free failures, then one attempt per backoff period
        refused = await attempt(6, "wrong-6")
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["global"] is False
        assert (await attempt(7, "correct horse battery")).status_code == 429  # not even the right one is checked
        assert (await attempt(8, "wrong-8", login=username.upper())).status_code == 429  # the same account, however named

        # another account is not affected
        assert (await attempt(9, "correct horse battery", login=(await c.get("/api/v10/users/@me", headers=world.bob.headers)).json()["username"])
                ).status_code == 200

        # the period over (its key gone, instead of waiting for it), the right password works and clears the count
        fails, backoff = login_keys(server.app.state.platform.settings.redis_prefix, f"u{world.alice.id}")
        redis = Redis.from_url(services.redis_url)
        try:
            assert int(await redis.get(fails)) == 6
            await redis.delete(backoff)
            assert (await attempt(10, "correct horse battery")).status_code == 200
            assert await redis.exists(fails, backoff) == 0
        finally:
            await redis.aclose()
        assert (await attempt(11, "wrong-11")).status_code == 401
