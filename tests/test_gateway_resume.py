"""Lossless, resumable delivery across instances: several clients, random disconnects and a
kill -9 of a server instance in the middle of a stream of messages; afterwards every client
has every message exactly once and in order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import httpx
import pytest

from townsquare.platform.core.config import Settings

from .gwclient import GatewayClient, ResilientClient
from .helpers import RunningServer, World, free_port, wait_for
from .instances import Instance


@pytest.fixture(scope="module")
def instances(settings: Settings, services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Instance]]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("instances")
    started = [Instance(settings, services.database_url, services.redis_url, free_port(), folder / f"i{n}").start() for n in range(2)]
    yield started
    for inst in started:
        inst.stop()


async def test_two_instances_share_events_and_sessions(world: World, instances: list[Instance]) -> None:
    a, b = instances
    on_a = GatewayClient(a.url)
    await on_a.identify(world.alice.token)
    async with httpx.AsyncClient(base_url=b.url) as via_b:
        r = await via_b.post(f"/api/v10/channels/{world.general_id}/messages", json={"content": "written through B"},
                             headers=world.bob.headers)
    assert (await on_a.next(t="MESSAGE_CREATE"))["d"]["id"] == r.json()["id"]
    # the session moves to B: resume there and get what was sent meanwhile
    session, seq = on_a.session_id, on_a.seq
    await on_a.drop()
    missed = await world.send(world.bob, "sent while alice was away")
    on_b = GatewayClient(b.url)
    await on_b.resume(world.alice.token, session_id=session, seq=seq)
    # RESUMED ends the replay; a message B had not read yet may follow it live
    await wait_for(lambda: _has(on_b, missed["id"]), timeout=15)
    assert on_b.events("RESUMED") and [m["id"] for m in on_b.events("MESSAGE_CREATE")] == [missed["id"]]
    await on_b.close()


async def _has(gw: GatewayClient, message_id: str) -> bool:
    return bool(gw.events("RESUMED")) and message_id in [m["id"] for m in gw.events("MESSAGE_CREATE")]


async def test_lossless_resume_with_drops_and_kill(world: World, server: RunningServer, instances: list[Instance]) -> None:
    rng = random.Random(2026)
    a, b = instances
    urls = [a.url, b.url]
    actors = [(world.alice.token, None), (world.bob.token, None), (world.owner.token, None), (world.bot.token, (1 << 0) | (1 << 9) | (1 << 15))]
    clients = [ResilientClient(urls, token, intents, rng) for token, intents in actors]
    for cl in clients:
        cl.start()
    await wait_for(lambda: _ready(clients), timeout=30)
    sent: list[str] = []
    writers = [world.client, httpx.AsyncClient(base_url=b.url, timeout=30)]
    try:
        for i in range(60):
            writer = writers[i % 2]
            r = await writer.post(f"/api/v10/channels/{world.general_id}/messages", json={"content": f"m{i}"}, headers=world.alice.headers)
            assert r.status_code == 200, r.text
            sent.append(r.json()["id"])
            if i in (8, 19, 33, 47):
                await rng.choice(clients).drop()
            if i == 25:
                a.kill()  # every session on A loses its socket; they resume on B
            if i == 40:
                a.start()  # A comes back empty-handed: sessions live in Redis, events in PostgreSQL
            await asyncio.sleep(0.03)
        await wait_for(lambda: _all_received(clients, sent), timeout=60, interval=0.1)
    finally:
        await writers[1].aclose()
        for cl in clients:
            await cl.stop()
    for cl in clients:
        got = [m for m in cl.messages if m in set(sent)]
        assert got == sent, f"missing {set(sent) - set(got)}, duplicates {len(got) - len(set(got))}"
        assert cl.invalidated == 0
    assert sum(cl.resumes for cl in clients) >= 4


async def _ready(clients: list[ResilientClient]) -> bool:
    return all(c.session_id for c in clients)


async def _all_received(clients: list[ResilientClient], sent: list[str]) -> bool:
    want = set(sent)
    return all(want <= set(c.messages) for c in clients)
