"""The payload fields bot libraries read, in Discord's documented shapes, checked on the wire
(a raw gateway client and the REST API of a real server): what broke discord.py and hikari in
issue 15 (items 1, 4, 5 and 8), and the member libraries expect beside a guild message or a
guild's typing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..gwclient import GatewayClient
from ..helpers import RunningServer, World, assert_discord_error

HAS_THREAD, SUPPRESS_EMBEDS = 1 << 5, 1 << 2
# GUILDS, GUILD_MEMBERS, GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS, GUILD_MESSAGE_TYPING, DIRECT_MESSAGES,
# DIRECT_MESSAGE_REACTIONS, DIRECT_MESSAGE_TYPING, MESSAGE_CONTENT
INTENTS = 1 | 2 | 512 | 1024 | 2048 | 4096 | 8192 | 16384 | 32768
THREAD_KEYS = {"id", "type", "guild_id", "name", "parent_id", "owner_id", "last_message_id", "rate_limit_per_user",
               "message_count", "member_count", "thread_metadata", "flags"}
METADATA_KEYS = {"archived", "auto_archive_duration", "archive_timestamp", "locked", "invitable", "create_timestamp"}


async def connect(server: RunningServer, token: str) -> GatewayClient:
    gw = GatewayClient(server.url)
    await gw.identify(token, intents=INTENTS)
    await gw.next(t="GUILD_CREATE")
    return gw


async def until(gw: GatewayClient, t: str, match: Any) -> dict[str, Any]:
    """The next dispatch `t` whose payload matches (earlier ones of that type are skipped)."""
    while True:
        d = (await gw.next(t=t, timeout=30))["d"]
        if match(d):
            return d


async def call(world: World, method: str, path: str, actor: Any, **kw: Any) -> Any:
    r = await world.client.request(method, f"/api/v10{path}", headers=actor.headers, **kw)
    assert r.status_code < 300, (method, path, r.status_code, r.text)
    return r.json() if r.content else None


def check_thread(obj: dict[str, Any], *, thread_id: str, parent: int, owner: int, name: str, members: int) -> None:
    assert THREAD_KEYS <= set(obj), set(obj)
    assert obj["id"] == thread_id and obj["type"] == 11 and obj["name"] == name
    assert obj["parent_id"] == str(parent) and obj["owner_id"] == str(owner) and obj["member_count"] == members
    assert METADATA_KEYS <= set(obj["thread_metadata"]) and obj["thread_metadata"]["archived"] is False


def check_member(obj: dict[str, Any], user_id: int) -> None:
    """Discord's guild member object with its user (what hikari's deserialize_member reads)."""
    assert obj["user"]["id"] == str(user_id) and isinstance(obj["user"]["username"], str)
    assert isinstance(obj["roles"], list) and datetime.fromisoformat(obj["joined_at"])
    assert {"nick", "deaf", "mute", "flags", "pending"} <= set(obj)


async def test_a_thread_from_a_message_in_events_and_history(world: World, server: RunningServer) -> None:
    bob = await connect(server, world.bob.token)
    general = world.general_id
    try:
        starter = await world.send(world.alice, "let us talk about this")
        thread = await call(world, "POST", f"/channels/{general}/messages/{starter['id']}/threads", world.alice, json={"name": "about this"})
        tid = thread["id"]
        assert tid == starter["id"]

        created = await until(bob, "THREAD_CREATE", lambda d: d["id"] == tid)
        assert THREAD_KEYS <= set(created) and created["parent_id"] == str(general)
        # item 1: member_count, and thread members with join_timestamp and flags
        joined = await until(bob, "THREAD_MEMBERS_UPDATE", lambda d: d["id"] == tid)
        assert joined["guild_id"] == str(world.guild_id) and joined["member_count"] == 1 and joined["removed_member_ids"] == []
        [member] = joined["added_members"]
        assert member["id"] == tid and member["user_id"] == str(world.alice.id) and member["flags"] == 0
        assert datetime.fromisoformat(member["join_timestamp"])
        # item 4: the starter message now has HAS_THREAD and the whole thread, live and in history
        update = await until(bob, "MESSAGE_UPDATE", lambda d: d["id"] == starter["id"])
        assert update["flags"] & HAS_THREAD
        check_thread(update["thread"], thread_id=tid, parent=general, owner=world.alice.id, name="about this", members=1)
        page = await call(world, "GET", f"/channels/{general}/messages?limit=10", world.bob)
        listed = next(m for m in page if m["id"] == starter["id"])
        assert listed["flags"] & HAS_THREAD
        check_thread(listed["thread"], thread_id=tid, parent=general, owner=world.alice.id, name="about this", members=1)
        assert all("thread" not in m and not m["flags"] & HAS_THREAD for m in page if m["id"] != starter["id"])
        # a reply to the starter: its referenced_message shows the flag and the thread too, sent and in history
        reply = await call(world, "POST", f"/channels/{general}/messages", world.bob,
                           json={"content": "replying to the starter", "message_reference": {"message_id": starter["id"]}})
        for shown in (reply["referenced_message"],
                      next(m for m in await call(world, "GET", f"/channels/{general}/messages?limit=10", world.bob)
                           if m["id"] == reply["id"])["referenced_message"]):
            assert shown["id"] == starter["id"] and shown["flags"] & HAS_THREAD
            check_thread(shown["thread"], thread_id=tid, parent=general, owner=world.alice.id, name="about this", members=1)
        plain = await call(world, "POST", f"/channels/{general}/messages", world.bob,
                           json={"content": "and to bob", "message_reference": {"message_id": reply["id"]}})
        assert plain["referenced_message"]["flags"] == 0 and "thread" not in plain["referenced_message"]

        await call(world, "PUT", f"/channels/{tid}/thread-members/@me", world.bob)
        joined = await until(bob, "THREAD_MEMBERS_UPDATE", lambda d: d["id"] == tid)
        assert joined["member_count"] == 2 and [m["user_id"] for m in joined["added_members"]] == [str(world.bob.id)]
        members = await call(world, "GET", f"/channels/{tid}/thread-members", world.bob)
        assert {m["user_id"] for m in members} == {str(world.alice.id), str(world.bob.id)}
        assert all(datetime.fromisoformat(m["join_timestamp"]) and m["flags"] == 0 for m in members)
        active = await call(world, "GET", f"/guilds/{world.guild_id}/threads/active", world.bob)
        assert [(m["id"], m["user_id"]) for m in active["members"]] == [(tid, str(world.bob.id))]
        assert all(datetime.fromisoformat(m["join_timestamp"]) for m in active["members"])
        await call(world, "DELETE", f"/channels/{tid}/thread-members/@me", world.bob)
        left = await until(bob, "THREAD_MEMBERS_UPDATE", lambda d: d["id"] == tid)
        assert left["member_count"] == 1 and left["added_members"] == [] and left["removed_member_ids"] == [str(world.bob.id)]

        # editing the starter keeps HAS_THREAD; its author may toggle SUPPRESS_EMBEDS only
        edited = await call(world, "PATCH", f"/channels/{general}/messages/{starter['id']}", world.alice,
                            json={"content": "let us talk about that", "flags": SUPPRESS_EMBEDS | 1})
        assert edited["flags"] == HAS_THREAD | SUPPRESS_EMBEDS and edited["thread"]["id"] == tid
        # one thread per message, refused in Discord's error shape
        r = await world.client.post(f"/api/v10/channels/{general}/messages/{starter['id']}/threads", json={"name": "again"},
                                    headers=world.alice.headers)
        assert_discord_error(r, 400)
        # a deleted thread leaves its starter without one
        await call(world, "DELETE", f"/channels/{tid}", world.owner)
        update = await until(bob, "MESSAGE_UPDATE", lambda d: d["id"] == starter["id"] and "thread" not in d)
        assert update["flags"] == SUPPRESS_EMBEDS
        after = await call(world, "GET", f"/channels/{general}/messages/{starter['id']}", world.bob)
        assert "thread" not in after and after["flags"] == SUPPRESS_EMBEDS
    finally:
        await bob.close()


async def test_guild_messages_reactions_and_typing_carry_the_member(world: World, server: RunningServer) -> None:
    alice = await connect(server, world.alice.token)
    try:
        # a guild MESSAGE_CREATE: the author's member, without its user (the author is beside it)
        said = await world.send(world.bob, "a word from bob")
        created = await until(alice, "MESSAGE_CREATE", lambda d: d["id"] == said["id"])
        assert created["author"]["id"] == str(world.bob.id) and "user" not in created["member"]
        assert created["member"]["roles"] == [] and datetime.fromisoformat(created["member"]["joined_at"])

        message = await world.send(world.alice, "react to me")
        await call(world, "PUT", f"/channels/{world.general_id}/messages/{message['id']}/reactions/👍/@me", world.bob)
        added = await until(alice, "MESSAGE_REACTION_ADD", lambda d: d["message_id"] == message["id"])
        assert added["user_id"] == str(world.bob.id) and added["guild_id"] == str(world.guild_id)
        assert added["emoji"] == {"id": None, "name": "👍"}
        check_member(added["member"], world.bob.id)

        await call(world, "POST", f"/channels/{world.general_id}/typing", world.bob)
        typing = await until(alice, "TYPING_START", lambda d: d["user_id"] == str(world.bob.id))
        assert typing["guild_id"] == str(world.guild_id) and typing["channel_id"] == str(world.general_id)
        check_member(typing["member"], world.bob.id)

        # in a DM there is no member
        dm = await call(world, "POST", "/users/@me/channels", world.bob, json={"recipient_id": str(world.alice.id)})
        said = await world.send(world.bob, "psst", int(dm["id"]))
        assert "member" not in await until(alice, "MESSAGE_CREATE", lambda d: d["id"] == said["id"])
        await call(world, "PUT", f"/channels/{dm['id']}/messages/{said['id']}/reactions/🎉/@me", world.bob)
        in_dm = await until(alice, "MESSAGE_REACTION_ADD", lambda d: d["message_id"] == said["id"])
        assert "member" not in in_dm and "guild_id" not in in_dm
    finally:
        await alice.close()


async def test_no_channel_create_for_private_channels(world: World, server: RunningServer) -> None:
    """Discord dispatches no CHANNEL_CREATE for DMs (hikari asserts a guild channel): a recipient
    learns of a DM from its first message. Guild channels are still announced."""
    alice, bob = await connect(server, world.alice.token), await connect(server, world.bob.token)
    try:
        dm = await call(world, "POST", "/users/@me/channels", world.alice, json={"recipient_id": str(world.bob.id)})
        group = await call(world, "POST", "/users/@me/channels", world.alice,
                           json={"recipients": [str(world.bob.id), str(world.owner.id)], "name": "three of us"})
        for channel in (dm, group):
            said = await world.send(world.alice, "hello there", int(channel["id"]))
            heard = await until(bob, "MESSAGE_CREATE", lambda d, said=said: d["id"] == said["id"])
            assert heard["channel_id"] == channel["id"] and "guild_id" not in heard
        room = await world.channel("room")
        created = await until(bob, "CHANNEL_CREATE", lambda d: True)
        assert created["id"] == str(room) and created["guild_id"] == str(world.guild_id)
        await until(alice, "CHANNEL_CREATE", lambda d: d["id"] == str(room))
        assert [d["id"] for gw in (alice, bob) for d in gw.events("CHANNEL_CREATE")] == [str(room), str(room)]
    finally:
        await alice.close()
        await bob.close()
