"""Gateway protocol conformance: each opcode and each close code for bad input."""

from __future__ import annotations

import asyncio
import json

import pytest

from .gwclient import GatewayClient
from townsquare.platform.core.config import Settings

from .helpers import RunningServer, World, start_server

GUILDS_AND_MESSAGES = (1 << 0) | (1 << 9) | (1 << 15)


async def _expect_close(gw: GatewayClient, code: int) -> None:
    assert await gw.closed() == code


async def test_hello_heartbeat_ack(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    hello = await gw.open()
    assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
    await gw.send({"op": 1, "d": None})
    assert (await gw.next(op=11))["op"] == 11
    await gw.close()


async def test_ready_and_guild_create(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    ready = await gw.identify(world.alice.token, intents=GUILDS_AND_MESSAGES)
    d = ready["d"]
    assert d["v"] == 10 and d["user"]["id"] == str(world.alice.id) and d["session_id"]
    assert d["resume_gateway_url"].startswith("ws://") and d["guilds"] == [{"id": str(world.guild_id), "unavailable": True}]
    assert isinstance(ready["s"], int)
    guild = (await gw.next(t="GUILD_CREATE"))["d"]
    assert guild["id"] == str(world.guild_id) and guild["unavailable"] is False
    assert str(world.general_id) in [c["id"] for c in guild["channels"]]
    # without GUILD_PRESENCES, Discord sends only one's own member (the rest: op 8)
    assert [m["user"]["id"] for m in guild["members"]] == [str(world.alice.id)] and guild["presences"] == []
    assert guild["roles"][0]["id"] == str(world.guild_id) and guild["member_count"] == 4 and guild["large"] is False
    assert "application_id" in guild and guild["application_id"] is None  # hikari reads it; no bot made this guild
    await gw.close()
    # with it, a guild under the large threshold comes with every member and the presences of those online
    everything = GatewayClient(server.url)
    await everything.identify(world.alice.token, intents=GUILDS_AND_MESSAGES | (1 << 8))
    guild = (await everything.next(t="GUILD_CREATE"))["d"]
    assert {m["user"]["id"] for m in guild["members"]} == {str(a.id) for a in (world.owner, world.alice, world.bob, world.bot)}
    assert all(p["status"] != "offline" for p in guild["presences"])
    await everything.close()


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        (["{not json"], 4002),
        (["[1, 2, 3]"], 4002),
        ([json.dumps({"op": "2"})], 4002),
        ([json.dumps({"op": 99, "d": None})], 4001),
        ([json.dumps({"op": 0, "d": {}})], 4001),
        ([json.dumps({"op": 3, "d": {"status": "online"}})], 4003),
        ([json.dumps({"op": 2, "d": {"token": "nope", "intents": 513}})], 4004),
        ([json.dumps({"op": 2, "d": {"token": "x" * 5000}})], 4002),
        ([json.dumps({"op": 2, "d": "not an object"})], 4002),
        ([json.dumps({"op": 1, "d": "seq?"})], 4002),
    ],
    ids=["decode", "not-object", "op-not-int", "unknown-op", "dispatch-op", "not-authenticated", "auth-failed", "too-large",
         "d-not-object", "bad-heartbeat"],
)
async def test_close_codes_before_identify(server: RunningServer, frames: list[str], code: int) -> None:
    gw = GatewayClient(server.url)
    await gw.open()
    for frame in frames:
        await gw.send(frame)
    await _expect_close(gw, code)


async def test_close_codes_after_identify(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    await gw.identify(world.alice.token, intents=GUILDS_AND_MESSAGES)
    await gw.send({"op": 2, "d": {"token": world.alice.token, "intents": 1}})
    await _expect_close(gw, 4005)
    bad = GatewayClient(server.url)
    await bad.open()
    await bad.send({"op": 2, "d": {"token": world.bot.token, "intents": 1 << 40}})
    await _expect_close(bad, 4013)
    shard = GatewayClient(server.url)
    await shard.open()
    await shard.send({"op": 2, "d": {"token": world.bot.token, "intents": 1, "shard": [1, 2]}})
    await _expect_close(shard, 4010)


async def test_invalid_seq_and_unknown_session(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    await gw.identify(world.bot.token, intents=GUILDS_AND_MESSAGES)
    session = gw.session_id
    await gw.close()
    future = GatewayClient(server.url)
    await future.resume(world.bot.token, session_id=session, seq=(10**12) << 16)
    await _expect_close(future, 4007)
    unknown = GatewayClient(server.url)
    await unknown.resume(world.bot.token, session_id="no-such-session", seq=1)
    frame = await unknown.next(op=9)
    assert frame["d"] is False
    await unknown.close()
    stolen = GatewayClient(server.url)
    await stolen.resume(world.alice.token, session_id=session, seq=0)  # someone else's session
    assert (await stolen.next(op=9))["d"] is False
    await stolen.close()


async def test_rate_limit_and_api_version(world: World, server: RunningServer) -> None:
    gw = GatewayClient(server.url)
    await gw.open()
    for _ in range(121):
        await gw.send({"op": 1, "d": None})
    await _expect_close(gw, 4008)
    from websockets.asyncio.client import connect

    async with connect(GatewayClient(server.url).url.replace("v=10", "v=6")) as ws:
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code == 4012


async def test_heartbeat_timeout_closes_zombie(settings: Settings, services) -> None:  # type: ignore[no-untyped-def]
    quick = start_server(settings, services.database_url, services.redis_url, gateway_heartbeat_ms=200)
    try:
        gw = GatewayClient(quick.url)
        hello = await gw.open()
        assert hello["d"]["heartbeat_interval"] == 200
        await _expect_close(gw, 4009)  # no heartbeat within 1.5 intervals
    finally:
        quick.stop()


async def test_presence_update_and_typing(world: World, server: RunningServer) -> None:
    watcher = GatewayClient(server.url)
    await watcher.identify(world.bob.token)  # a person: all intents
    await watcher.next(t="GUILD_CREATE")
    alice = GatewayClient(server.url)
    await alice.identify(world.alice.token)
    await alice.send({"op": 3, "d": {"status": "dnd", "activities": [], "since": None, "afk": False}})

    async def presence(status: str) -> dict:
        while True:
            frame = await watcher.next(t="PRESENCE_UPDATE")
            if frame["d"]["user"]["id"] == str(world.alice.id) and frame["d"]["status"] == status:
                return frame

    await asyncio.wait_for(presence("dnd"), 10)
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/typing", headers=world.alice.headers)
    assert r.status_code == 204
    typing = await watcher.next(t="TYPING_START")
    assert typing["d"]["user_id"] == str(world.alice.id) and typing["d"]["channel_id"] == str(world.general_id)
    await alice.send({"op": 3, "d": {"status": "invisible", "activities": []}})
    await asyncio.wait_for(presence("offline"), 10)  # invisible looks offline to others
    await alice.send({"op": 3, "d": {"status": "online", "activities": []}})
    await asyncio.wait_for(presence("online"), 10)
    await alice.close()
    await asyncio.wait_for(presence("offline"), 10)  # the last session ended
    await watcher.close()
