"""The conformance script: discord.py, hikari and discord.js, configured only through their
documented options (README, "Bring your own bot"), go through the same steps against a real
Townsquare server. Another user (alice) acts through the REST API meanwhile.

The server's public URL is a relay in front of it (proxy.py), so the script can cut the gateway
connections under a library like a network outage does and check the session resumes with
nothing lost and nothing twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..helpers import RunningServer, World, free_port, start_server, wait_for
from ..instances import Instance
from .bots import HAS_THREAD, DiscordJsBot, make_bot
from .proxy import Relay

LIBRARIES = ["discord.py", "hikari", "discord.js"]


@pytest.fixture(scope="module")
async def relayed(settings, services) -> AsyncIterator[tuple[RunningServer, Relay]]:  # type: ignore[no-untyped-def]
    """A server of its own whose public URL (what /gateway/bot and READY hand out) is a relay."""
    relay = await Relay(target_port=0).start()
    running = start_server(settings, services.database_url, services.redis_url, public_url=relay.url)
    relay.target_port = int(running.url.rsplit(":", 1)[1])
    yield running, relay
    await relay.close()
    running.stop()


@pytest.fixture
async def bot(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    library = request.param
    if library == "discord.js" and (why := DiscordJsBot.available()):
        pytest.fail(why)
    b = make_bot(library)
    yield b
    if isinstance(b, DiscordJsBot):
        await b.close()
    elif hasattr(b, "_log"):
        await b.call("stop")


CROWD = 1_100  # more than one GUILD_MEMBERS_CHUNK (1,000), and far above any large_threshold


async def crowd(world: World, n: int = CROWD) -> set[str]:
    """Makes the guild a large one: n more members (written straight to the tables, as a seeded
    society would be, since registering a thousand people one by one hashes a thousand passwords)."""
    from sqlalchemy import text
    from townsquare.platform.core.snowflake import new_id

    ids = [new_id() for _ in range(n)]
    async with world.platform.transaction() as tx:
        await tx.conn.execute(text("INSERT INTO users (id, username) SELECT u, 'crowd' || u FROM unnest(CAST(:ids AS bigint[])) AS u"),
                              {"ids": ids})
        await tx.conn.execute(text("INSERT INTO members (guild_id, user_id) SELECT :g, u FROM unnest(CAST(:ids AS bigint[])) AS u"),
                              {"g": world.guild_id, "ids": ids})
    return {str(i) for i in ids}


async def rest(world: World, method: str, path: str, actor: Any = None, **kw: Any) -> Any:
    r = await world.client.request(method, f"/api/v10{path}", headers=(actor or world.alice).headers, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


@pytest.mark.parametrize("bot", LIBRARIES, indirect=True)
async def test_library_runs_the_script(bot: Any, world: World, relayed: tuple[RunningServer, Relay], services: Any) -> None:
    running, relay = relayed
    general, gid, alice = str(world.general_id), str(world.guild_id), str(world.alice.id)
    everyone = {str(a.id) for a in (world.owner, world.alice, world.bob, world.bot)} | await crowd(world)

    # connect, and see the guild in the library's cache
    me = await bot.call("start", token=world.bot.token, base_url=relay.url, gateway_url=relay.ws_url)
    assert me["user_id"] == str(world.bot.id)
    guild = await bot.call("guild", guild_id=gid)
    assert guild["name"] == "Test society" and general in guild["channel_ids"]

    # MESSAGE_CREATE from another user, who is a member of the guild (not in the bot's cache yet:
    # a large guild's GUILD_CREATE lists only the bot's own member)
    hello = await world.send(world.alice, "hello, bot")
    heard = await bot.call("wait_message", id=hello["id"])
    assert heard == {"id": hello["id"], "content": "hello, bot", "author_id": alice, "channel_id": general, "member": True}

    # send, reply, edit, delete
    mine = await bot.call("send", channel_id=general, content="hello, humans")
    assert mine["content"] == "hello, humans" and mine["author_id"] == str(world.bot.id)
    reply = await bot.call("reply", channel_id=general, message_id=hello["id"], content="a reply")
    assert reply["reference_id"] == hello["id"]
    stored = await rest(world, "GET", f"/channels/{general}/messages/{reply['id']}")
    assert stored["message_reference"]["message_id"] == hello["id"] and stored["referenced_message"]["id"] == hello["id"]
    edited = await bot.call("edit", channel_id=general, message_id=mine["id"], content="hello, everyone")
    assert edited["content"] == "hello, everyone"
    assert (await rest(world, "GET", f"/channels/{general}/messages/{mine['id']}"))["content"] == "hello, everyone"
    await bot.call("delete", channel_id=general, message_id=mine["id"])
    r = await world.client.get(f"/api/v10/channels/{general}/messages/{mine['id']}", headers=world.alice.headers)
    assert r.status_code == 404

    # reactions: the bot adds one; alice's on the bot's reply arrives with her member object
    await bot.call("react", channel_id=general, message_id=hello["id"], emoji="👍")
    got = await rest(world, "GET", f"/channels/{general}/messages/{hello['id']}")
    assert [(x["emoji"]["name"], x["count"]) for x in got["reactions"]] == [("👍", 1)]
    await rest(world, "PUT", f"/channels/{general}/messages/{reply['id']}/reactions/🎉/@me")
    reaction = await bot.call("wait_reaction", message_id=reply["id"], user_id=alice)
    assert reaction["emoji"] == "🎉" and reaction["member_user_id"] == alice

    # threads: the bot starts one from alice's message and posts in it; alice starts another
    # (her THREAD_CREATE and THREAD_MEMBERS_UPDATE reach the bot), and posts in it
    first = await world.send(world.alice, "a thread could start here")
    second = await world.send(world.alice, "and another one here")
    thread = await bot.call("thread", channel_id=general, message_id=first["id"], name="bot's thread")
    assert thread == {"id": first["id"], "name": "bot's thread", "parent_id": general, "type": 11}
    inside = await bot.call("send", channel_id=thread["id"], content="first words in the thread")
    posted = await rest(world, "GET", f"/channels/{thread['id']}/messages")
    assert [m["id"] for m in posted] == [inside["id"]]
    theirs = await rest(world, "POST", f"/channels/{general}/messages/{second['id']}/threads", json={"name": "alice's thread"})
    said = await world.send(world.alice, "in alice's thread", int(theirs["id"]))
    assert (await bot.call("wait_message", id=said["id"]))["channel_id"] == theirs["id"]

    # history shows the thread starters with their threads
    page = {m["id"]: m for m in await bot.call("history", channel_id=general, limit=20)}
    assert {hello["id"], reply["id"], first["id"], second["id"]} <= set(page)
    for starter, name in ((first, "bot's thread"), (second, "alice's thread")):
        m = page[starter["id"]]
        assert m["has_thread"], m
        assert m["thread"] == {"id": starter["id"], "name": name, "parent_id": general, "type": 11}, m
    assert not page[hello["id"]]["has_thread"] and page[hello["id"]]["thread"] is None
    raw = await rest(world, "GET", f"/channels/{general}/messages/{first['id']}")
    assert raw["flags"] & HAS_THREAD and raw["thread"]["thread_metadata"]["archived"] is False

    # DM: the bot writes first, alice answers
    dm = await bot.call("dm", user_id=alice, content="psst")
    assert [m["content"] for m in await rest(world, "GET", f"/channels/{dm['channel_id']}/messages")] == ["psst"]
    answer = await world.send(world.alice, "yes?", int(dm["channel_id"]))
    heard = await bot.call("wait_message", id=answer["id"])
    assert heard["channel_id"] == dm["channel_id"] and heard["member"] is False

    # typing, both ways
    await bot.call("typing", channel_id=general)
    await rest(world, "POST", f"/channels/{general}/typing")
    await bot.call("wait_typing", channel_id=general, user_id=alice)

    # members of a large guild: one fetched over REST, all of them chunked over the gateway
    member = await bot.call("fetch_member", guild_id=gid, user_id=alice)
    assert member["user_id"] == alice and member["joined_at"]
    chunked = (await bot.call("chunk", guild_id=gid))["member_ids"]
    assert len(chunked) == len(everyone) and set(chunked) == everyone

    # a forced disconnect: the network drops under the gateway connection; what alice says
    # meanwhile and after arrives once each, in order
    before = (await bot.call("resumes"))["count"]
    assert relay.cut_websockets() >= 1
    during = [await world.send(world.alice, f"while the bot is away {i}") for i in range(3)]
    await bot.call("wait_resumes", more_than=before)
    after = await world.send(world.alice, "after the resume")
    for m in (*during, after):
        await bot.call("wait_message", id=m["id"])
    ids = (await bot.call("received"))["ids"]
    assert len(ids) == len(set(ids)), "a message arrived twice"
    expected = [m["id"] for m in (*during, after)]
    assert [i for i in ids if i in expected] == expected

    # a session that cannot be resumed (INVALID_SESSION): the library identifies again, at
    # Townsquare's gateway (discord.py only with DEFAULT_GATEWAY set: it would go to Discord's)
    readies = (await bot.call("readies"))["count"]
    await invalidate_session(running, relay, services, world.bot.id)
    await bot.call("wait_readies", more_than=readies)
    again = await world.send(world.alice, "after a new session")
    await bot.call("wait_message", id=again["id"])
    ids = (await bot.call("received"))["ids"]
    assert len(ids) == len(set(ids)), "a message arrived twice"


async def invalidate_session(running: RunningServer, relay: Relay, services: Any, user_id: int) -> None:
    """Cuts the user's gateway connections and, before the library gets through again, removes
    their resume records: its RESUME is answered INVALID_SESSION."""
    from redis.asyncio import Redis

    hub = running.app.state.hub
    keys = [hub._session_key(s.id) for s in list(hub.by_user.get(user_id, ()))]
    assert keys
    relay.pause()
    cut = time.time()
    assert relay.cut_websockets() >= 1
    redis = Redis.from_url(services.redis_url)
    try:
        for key in keys:
            async def saved_at_close(key: str = key) -> bool:  # the server saves the record once more when it sees the close
                raw = await redis.get(key)
                return raw is not None and json.loads(raw)["saved"] >= cut

            await wait_for(saved_at_close, timeout=60)
            await redis.delete(key)
    finally:
        await redis.aclose()
        relay.resume()


@pytest.fixture(scope="module")
async def served(settings, services, tmp_path_factory) -> AsyncIterator[tuple[Instance, Relay]]:  # type: ignore[no-untyped-def]
    """`townsquare serve` as a process of its own (to kill and restart) behind a relay, so that its
    address stays the same across restarts."""
    port = free_port()
    relay = await Relay(target_port=port).start()
    inst = Instance(settings, services.database_url, services.redis_url, port, tmp_path_factory.mktemp("instance"))
    inst.env["TOWNSQUARE_PUBLIC_URL"] = relay.url
    await asyncio.to_thread(inst.start)
    yield inst, relay
    await asyncio.to_thread(inst.stop)
    await relay.close()


@pytest.mark.parametrize("bot", LIBRARIES, indirect=True)
async def test_library_resumes_across_server_kill_and_sigterm(bot: Any, world: World, served: tuple[Instance, Relay]) -> None:
    inst, relay = served
    if inst.proc is None or inst.proc.poll() is not None:  # an earlier library's test failed while it was down
        await asyncio.to_thread(inst.start)
    me = await bot.call("start", token=world.bot.token, base_url=relay.url, gateway_url=relay.ws_url)
    assert me["user_id"] == str(world.bot.id)
    await bot.call("guild", guild_id=str(world.guild_id))
    first = await world.send(world.alice, "before anything happens")
    await bot.call("wait_message", id=first["id"])
    expected = [first["id"]]

    async def said_and_heard(*, while_down: Any) -> None:
        """What alice says while the server is down and after it is back reaches the bot once each, in order."""
        sent = [await world.send(world.alice, f"while the server is down {i}") for i in range(3)]
        await while_down()
        sent.append(await world.send(world.alice, "after the restart"))
        for m in sent:
            await bot.call("wait_message", id=m["id"])
        expected.extend(m["id"] for m in sent)
        ids = (await bot.call("received"))["ids"]
        assert len(ids) == len(set(ids)), "a message arrived twice"
        assert [i for i in ids if i in expected] == expected

    # kill -9: no shutdown code runs; the restarted server resumes the session from Redis and PostgreSQL
    resumed = (await bot.call("resumes"))["count"]
    inst.kill()

    async def restart_after_kill() -> None:
        await asyncio.to_thread(inst.start)
        await bot.call("wait_resumes", more_than=resumed)

    await said_and_heard(while_down=restart_after_kill)

    # SIGTERM: the server tells the session to RECONNECT before it closes; it resumes after the restart
    reconnects, resumed = (await bot.call("reconnects"))["count"], (await bot.call("resumes"))["count"]
    await asyncio.to_thread(inst.stop)
    await bot.call("wait_reconnects", more_than=reconnects)

    async def restart_after_sigterm() -> None:
        await asyncio.to_thread(inst.start)
        await bot.call("wait_resumes", more_than=resumed)

    await said_and_heard(while_down=restart_after_sigterm)
