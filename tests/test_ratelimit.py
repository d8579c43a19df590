"""Rate limits counted in Redis: per-route buckets, a global per-token limit, headers, 429."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from townsquare.platform.core.config import Settings

from .helpers import RunningServer, World, start_server


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
