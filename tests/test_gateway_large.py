"""Large guilds, as Discord does them: GUILD_CREATE carries the members the intents and
IDENTIFY's large_threshold allow, the rest comes through Request Guild Members (op 8) in
GUILD_MEMBERS_CHUNK dispatches of up to 1,000 members; discord.py's `guild.chunk()` and hikari's
`request_guild_members` get the whole list."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from townsquare.platform.actions import guilds
from townsquare.platform.actions.context import Platform
from townsquare.platform.core.snowflake import new_id

from .gwclient import GatewayClient
from .helpers import Actor, RunningServer, make_bot, person, wait_for

GUILDS, GUILD_MEMBERS, GUILD_PRESENCES, GUILD_MESSAGES = 1 << 0, 1 << 1, 1 << 8, 1 << 9
FILLERS = 1001  # with the people and bots below: more than one chunk of 1,000


@dataclass
class BigGuild:
    id: int
    owner: Actor
    human: Actor
    bot: Actor
    quiet_bot: Actor
    tag: str
    fillers: list[int]
    nicknamed: int
    with_role: int

    @property
    def everyone(self) -> set[str]:
        return {str(u) for u in [self.owner.id, self.human.id, self.bot.id, self.quiet_bot.id, *self.fillers]}


@pytest.fixture
async def big(platform: Platform) -> BigGuild:
    """A guild of 1,005 members: its owner, a person, two bots and 1,001 bot users added in bulk
    (one with a nickname, one with a role)."""
    owner, human, bot, quiet_bot = await person(platform), await person(platform), await make_bot(platform), await make_bot(platform)
    guild = await guilds.do_create_guild(platform, owner.id, name="A big society")
    gid = int(guild["id"])
    for actor in (human, bot, quiet_bot):
        async with platform.transaction() as tx:
            await guilds.add_member(tx, gid, actor.id)
    tag = secrets.token_hex(3)
    fillers = [new_id() for _ in range(FILLERS)]
    role = new_id()
    async with platform.transaction() as tx:
        c = tx.conn
        await c.execute(text("INSERT INTO users (id, username, bot) SELECT u, 'lg' || :t || '_' || n, true "
                             "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS x(u, n)"), {"t": tag, "ids": fillers})
        await c.execute(text("INSERT INTO members (guild_id, user_id) SELECT :g, u FROM unnest(CAST(:ids AS bigint[])) AS x(u)"),
                        {"g": gid, "ids": fillers})
        await c.execute(text("INSERT INTO roles (id, guild_id, name, permissions) VALUES (:r, :g, 'elders', 0)"), {"r": role, "g": gid})
        await c.execute(text("UPDATE members SET nick = 'the baker' WHERE guild_id = :g AND user_id = :u"), {"g": gid, "u": fillers[0]})
        await c.execute(text("UPDATE members SET roles = ARRAY[CAST(:r AS bigint)] WHERE guild_id = :g AND user_id = :u"),
                        {"r": role, "g": gid, "u": fillers[1]})
    return BigGuild(gid, owner, human, bot, quiet_bot, tag, fillers, fillers[0], fillers[1])


async def guild_create(gw: GatewayClient, gid: int) -> dict[str, Any]:
    while True:
        frame = await gw.next(t="GUILD_CREATE")
        if frame["d"]["id"] == str(gid):
            return frame["d"]


async def chunks(gw: GatewayClient, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Sends one op 8 and collects its GUILD_MEMBERS_CHUNKs (by nonce) up to the last."""
    nonce = request.setdefault("nonce", secrets.token_hex(8))
    await gw.send({"op": 8, "d": request})
    got: list[dict[str, Any]] = []
    while True:
        d = (await gw.next(t="GUILD_MEMBERS_CHUNK"))["d"]
        assert d.get("nonce") == nonce
        got.append(d)
        if d["chunk_index"] == d["chunk_count"] - 1:
            return got


def ids(members: list[dict[str, Any]]) -> list[str]:
    return [m["user"]["id"] for m in members]


async def test_guild_create_of_a_large_guild_and_request_guild_members(big: BigGuild, server: RunningServer) -> None:
    total = len(big.everyone)
    # a bot without GUILD_PRESENCES: its own member only, whatever the size
    gw = GatewayClient(server.url)
    await gw.identify(big.bot.token, intents=GUILDS | GUILD_MEMBERS | GUILD_MESSAGES)
    guild = await guild_create(gw, big.id)
    assert ids(guild["members"]) == [str(big.bot.id)] and guild["presences"] == []
    assert guild["member_count"] == total and guild["large"] is True and guild["application_id"] is None
    assert guild["joined_at"] == guild["members"][0]["joined_at"]

    # the whole list: two chunks (1,000 + the rest), each member once, the nonce on each
    everything = await chunks(gw, {"guild_id": str(big.id), "query": "", "limit": 0})
    assert [(c["chunk_index"], c["chunk_count"]) for c in everything] == [(0, 2), (1, 2)]
    assert len(everything[0]["members"]) == 1000
    listed = [u for c in everything for u in ids(c["members"])]
    assert len(listed) == len(set(listed)) and set(listed) == big.everyone
    assert "presences" not in everything[0]  # not asked for

    # by id: those found, and the others in not_found; a single id as a plain snowflake too
    stranger = str(new_id())
    by_id = await chunks(gw, {"guild_id": str(big.id), "user_ids": [str(big.owner.id), str(big.fillers[5]), stranger]})
    assert len(by_id) == 1 and set(ids(by_id[0]["members"])) == {str(big.owner.id), str(big.fillers[5])}
    assert by_id[0]["not_found"] == [stranger]
    one = await chunks(gw, {"guild_id": big.id, "user_ids": str(big.nicknamed)})
    assert ids(one[0]["members"]) == [str(big.nicknamed)] and one[0]["members"][0]["nick"] == "the baker"

    # a prefix of the username (or nickname), case-insensitive, at most `limit` (and at most 100)
    prefix = await chunks(gw, {"guild_id": str(big.id), "query": f"LG{big.tag}_1", "limit": 5})
    assert len(prefix[0]["members"]) == 5 and all(m["user"]["username"].startswith(f"lg{big.tag}_1") for m in prefix[0]["members"])
    capped = await chunks(gw, {"guild_id": str(big.id), "query": f"lg{big.tag}", "limit": 0})
    assert len(capped[0]["members"]) == 100
    nick = await chunks(gw, {"guild_id": str(big.id), "query": "the bak", "limit": 10})
    assert ids(nick[0]["members"]) == [str(big.nicknamed)]
    none = await chunks(gw, {"guild_id": str(big.id), "query": "nobody-is-called-this", "limit": 10})
    assert none == [{"guild_id": str(big.id), "members": [], "chunk_index": 0, "chunk_count": 1, "not_found": [], "nonce": none[0]["nonce"]}]

    # presences are given only to a session with GUILD_PRESENCES
    asked = await chunks(gw, {"guild_id": str(big.id), "user_ids": [str(big.bot.id)], "presences": True})
    assert "presences" not in asked[0]

    # a nonce over 32 bytes is ignored; a guild the session is not in gets no answer
    await gw.send({"op": 8, "d": {"guild_id": str(new_id()), "query": "", "limit": 0}})
    await gw.send({"op": 8, "d": {"guild_id": str(big.id), "user_ids": [str(big.bot.id)], "nonce": "n" * 33}})
    late = (await gw.next(t="GUILD_MEMBERS_CHUNK"))["d"]
    assert "nonce" not in late and ids(late["members"]) == [str(big.bot.id)]
    await gw.close()

    # without GUILD_MEMBERS, the whole list is not given (an empty answer, so a library's wait ends)
    quiet = GatewayClient(server.url)
    await quiet.identify(big.quiet_bot.token, intents=GUILDS | GUILD_MESSAGES)
    await guild_create(quiet, big.id)
    refused = await chunks(quiet, {"guild_id": str(big.id), "query": "", "limit": 0})
    assert refused[0]["members"] == [] and refused[0]["chunk_count"] == 1
    # a request with neither a query nor user ids cannot be read: 4002
    await quiet.send({"op": 8, "d": {"guild_id": str(big.id)}})
    assert await quiet.closed() == 4002


async def test_guild_create_with_presences_follows_large_threshold(big: BigGuild, server: RunningServer) -> None:
    online = GatewayClient(server.url)  # makes the bot online
    await online.identify(big.bot.token, intents=GUILDS)
    await guild_create(online, big.id)
    try:
        # a person (every intent): the guild is large, so only members online, with a role or a
        # nickname, and oneself; the presences of those online
        gw = GatewayClient(server.url)
        await gw.identify(big.human.token)
        guild = await guild_create(gw, big.id)
        assert guild["large"] is True and guild["member_count"] == len(big.everyone)
        assert set(ids(guild["members"])) == {str(big.human.id), str(big.bot.id), str(big.nicknamed), str(big.with_role)}
        assert str(big.bot.id) in {p["user"]["id"] for p in guild["presences"]}
        assert all(p["status"] != "offline" for p in guild["presences"])
        # op 8 with presences: the presences of the members returned
        asked = await chunks(gw, {"guild_id": str(big.id), "user_ids": [str(big.bot.id), str(big.owner.id)], "presences": True})
        assert [p["user"]["id"] for p in asked[0]["presences"]] == [str(big.bot.id)]
        await gw.close()
        # large_threshold above Discord's maximum is taken as 250: still large
        capped = GatewayClient(server.url)
        await capped.identify(big.human.token, large_threshold=100_000)
        assert (await guild_create(capped, big.id))["large"] is True
        await capped.close()
    finally:
        await online.close()


async def test_discord_py_chunks_a_large_guild(big: BigGuild, server: RunningServer) -> None:
    import discord

    original = discord.http.Route.BASE
    discord.http.Route.BASE = f"{server.url}/api/v10"
    intents = discord.Intents.default()
    intents.members = True
    client = discord.AutoShardedClient(intents=intents, chunk_guilds_at_startup=False)
    ready = asyncio.Event()

    @client.event
    async def on_ready() -> None:
        ready.set()

    runner = asyncio.create_task(client.start(big.bot.token))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        guild = await wait_for(lambda: _async(client.get_guild(big.id)), timeout=30)
        assert guild.large and guild.member_count == len(big.everyone) and not guild.chunked
        members = await asyncio.wait_for(guild.chunk(), 60)
        assert {str(m.id) for m in members} == big.everyone and guild.chunked
        assert guild.get_member(big.nicknamed).nick == "the baker"
    finally:
        await client.close()
        runner.cancel()
        with contextlib.suppress(BaseException):
            await runner
        discord.http.Route.BASE = original


async def test_hikari_requests_the_members_of_a_large_guild(big: BigGuild, server: RunningServer) -> None:
    import hikari

    intents = hikari.Intents.GUILDS | hikari.Intents.GUILD_MEMBERS
    bot = hikari.GatewayBot(big.bot.token, rest_url=f"{server.url}/api/v10", intents=intents, banner=None, logs=None)
    received: set[str] = set()
    done = asyncio.Event()

    async def on_chunk(event: hikari.MemberChunkEvent) -> None:
        if event.nonce == "everyone":
            received.update(str(u) for u in event.members)
            if event.chunk_index == event.chunk_count - 1:
                done.set()

    bot.subscribe(hikari.MemberChunkEvent, on_chunk)
    await asyncio.wait_for(bot.start(check_for_updates=False), 60)
    try:
        await wait_for(lambda: _async(bot.cache.get_guild(big.id)), timeout=30)
        await bot.request_guild_members(big.id, nonce="everyone")
        await asyncio.wait_for(done.wait(), 60)
        assert received == big.everyone
        assert len(bot.cache.get_members_view_for_guild(big.id)) == len(big.everyone)
    finally:
        await bot.close()


async def _async(value: Any) -> Any:
    return value


async def test_request_guild_members_sends_all_2500_members_in_numbered_chunks(platform: Platform, server: RunningServer) -> None:
    """Issue 18: a society of 2,500 members (an owner, a bot, 2,498 more) comes whole through
    op 8: three chunks of 1,000, 1,000 and 500, numbered 0..2 of 3, each member exactly once."""
    owner, bot = await person(platform), await make_bot(platform)
    gid = int((await guilds.do_create_guild(platform, owner.id, name="A society of 2,500"))["id"])
    async with platform.transaction() as tx:
        await guilds.add_member(tx, gid, bot.id)
    fillers = [new_id() for _ in range(2498)]
    tag = secrets.token_hex(3)
    async with platform.transaction() as tx:
        await tx.conn.execute(text("INSERT INTO users (id, username, bot) SELECT u, 'xl' || :t || '_' || n, true "
                                   "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS x(u, n)"), {"t": tag, "ids": fillers})
        await tx.conn.execute(text("INSERT INTO members (guild_id, user_id) SELECT :g, u FROM unnest(CAST(:ids AS bigint[])) AS x(u)"),
                              {"g": gid, "ids": fillers})
    everyone = {str(u) for u in [owner.id, bot.id, *fillers]}
    gw = GatewayClient(server.url)
    try:
        await gw.identify(bot.token, intents=GUILDS | GUILD_MEMBERS)
        await guild_create(gw, gid)
        got = await chunks(gw, {"guild_id": str(gid), "query": "", "limit": 0})
        assert [(c["chunk_index"], c["chunk_count"], len(c["members"])) for c in got] == [(0, 3, 1000), (1, 3, 1000), (2, 3, 500)]
        listed = [u for c in got for u in ids(c["members"])]
        assert len(listed) == 2500 and set(listed) == everyone
        assert all(c["guild_id"] == str(gid) for c in got) and got[0]["not_found"] == [] and "not_found" not in got[1]
    finally:
        await gw.close()
