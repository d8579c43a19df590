"""An unmodified discord.py bot joins a Townsquare society: only its API base URL changes.

discord.py's plain `Client` connects to Discord's hard-coded gateway host; the sharded client
asks `GET /gateway/bot` for the gateway URL, like Discord's large bots do, so that is the one
that finds Townsquare's gateway through `Route.BASE` alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import discord
import pytest

from .helpers import RunningServer, World, wait_for


@pytest.fixture
def discord_base(server: RunningServer) -> Iterator[None]:
    original = discord.http.Route.BASE
    discord.http.Route.BASE = f"{server.url}/api/v10"
    yield
    discord.http.Route.BASE = original


async def test_discord_py_bot_lives_in_townsquare(world: World, server: RunningServer, discord_base: None) -> None:
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.AutoShardedClient(intents=intents)
    ready, resumed = asyncio.Event(), asyncio.Event()
    received: list[discord.Message] = []

    @client.event
    async def on_ready() -> None:
        ready.set()

    @client.event
    async def on_resumed() -> None:
        resumed.set()

    @client.event
    async def on_message(message: discord.Message) -> None:
        received.append(message)

    runner = asyncio.create_task(client.start(world.bot.token))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        assert client.user is not None and client.user.id == world.bot.id
        guild = client.get_guild(world.guild_id)
        assert guild is not None and guild.name == "Test society"
        channel = guild.get_channel(world.general_id)
        assert isinstance(channel, discord.TextChannel)

        sent = await world.send(world.alice, "hello, bot")
        await wait_for(lambda: _async(any(m.id == int(sent["id"]) for m in received)), timeout=15)
        heard = next(m for m in received if m.id == int(sent["id"]))
        assert heard.content == "hello, bot" and heard.author.id == world.alice.id and heard.channel.id == world.general_id

        mine = await channel.send("hello, humans")
        assert mine.content == "hello, humans" and mine.author.id == world.bot.id
        edited = await mine.edit(content="hello, everyone")
        assert edited.content == "hello, everyone"
        await heard.add_reaction("👍")
        got = (await world.client.get(f"/api/v10/channels/{world.general_id}/messages/{sent['id']}", headers=world.alice.headers)).json()
        assert got["reactions"][0]["emoji"]["name"] == "👍"
        await mine.delete()
        r = await world.client.get(f"/api/v10/channels/{world.general_id}/messages/{mine.id}", headers=world.alice.headers)
        assert r.status_code == 404

        # the server asks for a reconnect; discord.py resumes, and nothing posted meanwhile is lost
        hub = server.app.state.hub
        for session in list(hub.by_user.get(world.bot.id, ())):
            session.send_raw('{"op":7,"d":null,"s":null,"t":null}')
        during = await world.send(world.alice, "sent around the reconnect")
        await asyncio.wait_for(resumed.wait(), 30)
        after = await world.send(world.alice, "after the resume")
        await wait_for(lambda: _async({int(during["id"]), int(after["id"])} <= {m.id for m in received}), timeout=15)
        ids = [m.id for m in received]
        assert len(ids) == len(set(ids))  # nothing twice
    finally:
        await client.close()
        runner.cancel()
        with __import__("contextlib").suppress(asyncio.CancelledError, Exception):
            await runner


async def _async(value: bool) -> bool:
    return value
