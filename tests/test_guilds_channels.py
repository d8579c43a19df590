"""Guilds, members, invites, channels, threads and group DMs through the REST API."""

from __future__ import annotations

from sqlalchemy import text

from .helpers import World, make_bot, person


async def test_guild_lifecycle_and_invites(world: World) -> None:
    c = world.client
    r = await c.post("/api/v10/guilds", json={"name": "New society"}, headers=world.alice.headers)
    assert r.status_code == 201
    guild = r.json()
    gid = guild["id"]
    assert guild["owner_id"] == str(world.alice.id) and guild["roles"][0]["name"] == "@everyone"
    assert gid in [g["id"] for g in (await c.get("/api/v10/users/@me/guilds", headers=world.alice.headers)).json()]
    r = await c.post(f"/api/v10/channels/{guild['system_channel_id']}/invites", json={"max_uses": 1}, headers=world.alice.headers)
    code = r.json()["code"]
    assert (await c.get(f"/api/v10/invites/{code}", headers=world.bob.headers)).json()["guild"]["id"] == gid
    assert (await c.post(f"/api/v10/invites/{code}", headers=world.bob.headers)).status_code == 200
    assert (await c.post(f"/api/v10/invites/{code}", headers=world.owner.headers)).status_code == 404  # used up
    members = (await c.get(f"/api/v10/guilds/{gid}/members", params={"limit": 10}, headers=world.bob.headers)).json()
    assert sorted(int(m["user"]["id"]) for m in members) == sorted([world.alice.id, world.bob.id])
    r = await c.patch(f"/api/v10/guilds/{gid}", json={"name": "Renamed"}, headers=world.bob.headers)
    assert r.status_code == 403
    assert (await c.patch(f"/api/v10/guilds/{gid}", json={"name": "Renamed"}, headers=world.alice.headers)).json()["name"] == "Renamed"
    assert (await c.delete(f"/api/v10/users/@me/guilds/{gid}", headers=world.alice.headers)).status_code == 400  # owner cannot leave
    assert (await c.delete(f"/api/v10/users/@me/guilds/{gid}", headers=world.bob.headers)).status_code == 204
    assert (await c.get(f"/api/v10/guilds/{gid}", headers=world.bob.headers)).status_code == 404
    assert (await c.delete(f"/api/v10/guilds/{gid}", headers=world.alice.headers)).status_code == 204
    assert (await c.get(f"/api/v10/guilds/{gid}", headers=world.alice.headers)).status_code == 404


async def test_add_bot_member_and_kick(world: World) -> None:
    bot = await make_bot(world.platform)
    url = f"/api/v10/guilds/{world.guild_id}/members/{bot.id}"
    assert (await world.client.put(url, headers=world.alice.headers)).status_code == 403
    r = await world.client.put(url, headers=world.owner.headers)
    assert r.status_code == 201 and r.json()["user"]["bot"] is True
    assert (await world.client.put(url, headers=world.owner.headers)).status_code == 204  # already a member
    await world.send(bot, "beep")
    assert (await world.client.delete(url, headers=world.alice.headers)).status_code == 403
    assert (await world.client.delete(url, headers=world.owner.headers)).status_code == 204
    r = await world.client.post(f"/api/v10/channels/{world.general_id}/messages", json={"content": "x"}, headers=bot.headers)
    assert r.status_code == 403


async def test_channel_crud_and_delete_with_messages(world: World) -> None:
    c = world.client
    r = await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "cat", "type": 4}, headers=world.owner.headers)
    category = r.json()["id"]
    r = await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "inside", "parent_id": category, "topic": "t"},
                     headers=world.owner.headers)
    assert r.status_code == 201 and r.json()["parent_id"] == category
    channel = r.json()["id"]
    assert (await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "x"}, headers=world.alice.headers)).status_code == 403
    bad = await c.post(f"/api/v10/guilds/{world.guild_id}/channels", json={"name": "x", "parent_id": channel}, headers=world.owner.headers)
    assert bad.status_code == 400
    r = await c.patch(f"/api/v10/channels/{channel}", json={"name": "renamed", "topic": "new topic"}, headers=world.owner.headers)
    assert r.json()["name"] == "renamed" and r.json()["topic"] == "new topic"
    msg = await world.send(world.alice, "doomed", int(channel))
    thread = (await c.post(f"/api/v10/channels/{channel}/messages/{msg['id']}/threads", json={"name": "sub"}, headers=world.alice.headers)).json()
    await world.send(world.bob, "in thread", int(thread["id"]))
    assert (await c.delete(f"/api/v10/channels/{channel}", headers=world.alice.headers)).status_code == 403
    assert (await c.delete(f"/api/v10/channels/{channel}", headers=world.owner.headers)).status_code == 200
    assert (await c.get(f"/api/v10/channels/{channel}", headers=world.owner.headers)).status_code == 404
    assert (await c.get(f"/api/v10/channels/{thread['id']}", headers=world.owner.headers)).status_code == 404
    async with world.platform.read() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM messages WHERE channel_id = ANY(:ids)"),
                                   {"ids": [int(channel), int(thread["id"])]})).scalar_one()
    assert left == 0
    names = [ch["name"] for ch in (await c.get(f"/api/v10/guilds/{world.guild_id}/channels", headers=world.owner.headers)).json()]
    assert "renamed" not in names and "cat" in names


async def test_public_and_private_threads(world: World) -> None:
    c = world.client
    msg = await world.send(world.alice, "start a thread here")
    r = await c.post(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}/threads", json={"name": "public"}, headers=world.alice.headers)
    assert r.status_code == 201
    public = r.json()
    assert public["id"] == msg["id"] and public["type"] == 11 and public["parent_id"] == str(world.general_id)
    again = await c.post(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}/threads", json={"name": "dup"}, headers=world.bob.headers)
    assert again.status_code == 400
    await world.send(world.bob, "reply in thread", int(public["id"]))
    starter = (await c.get(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}", headers=world.bob.headers)).json()
    assert starter["thread"]["id"] == public["id"]
    r = await c.post(f"/api/v10/channels/{world.general_id}/threads", json={"name": "secret", "type": 12}, headers=world.alice.headers)
    private = r.json()
    assert private["type"] == 12
    assert (await c.get(f"/api/v10/channels/{private['id']}/messages", headers=world.bob.headers)).status_code == 403
    assert (await c.put(f"/api/v10/channels/{private['id']}/thread-members/{world.bob.id}", headers=world.alice.headers)).status_code == 204
    assert (await c.get(f"/api/v10/channels/{private['id']}/messages", headers=world.bob.headers)).status_code == 200
    members = (await c.get(f"/api/v10/channels/{private['id']}/thread-members", headers=world.bob.headers)).json()
    assert sorted(int(m["user_id"]) for m in members) == sorted([world.alice.id, world.bob.id])
    active = (await c.get(f"/api/v10/guilds/{world.guild_id}/threads/active", headers=world.bob.headers)).json()
    assert {public["id"], private["id"]} <= {t["id"] for t in active["threads"]}
    # the owner (MANAGE_THREADS) locks the thread; members can no longer post
    assert (await c.patch(f"/api/v10/channels/{public['id']}", json={"locked": True}, headers=world.bob.headers)).status_code == 403
    assert (await c.patch(f"/api/v10/channels/{public['id']}", json={"locked": True}, headers=world.owner.headers)).status_code == 200
    r = await c.post(f"/api/v10/channels/{public['id']}/messages", json={"content": "late"}, headers=world.bob.headers)
    assert r.status_code == 400 and r.json()["code"] == 50083
    assert (await c.delete(f"/api/v10/channels/{private['id']}/thread-members/{world.bob.id}", headers=world.alice.headers)).status_code == 403
    assert (await c.delete(f"/api/v10/channels/{private['id']}/thread-members/@me", headers=world.bob.headers)).status_code == 204
    assert (await c.get(f"/api/v10/channels/{private['id']}/messages", headers=world.bob.headers)).status_code == 403


async def test_group_dm(world: World) -> None:
    carol = await person(world.platform)
    r = await world.client.post("/api/v10/users/@me/channels", json={"recipients": [str(world.bob.id), str(carol.id)], "name": "trio"},
                                headers=world.alice.headers)
    assert r.status_code == 200
    group = r.json()
    assert group["type"] == 3 and sorted(u["id"] for u in group["recipients"]) == sorted([str(world.bob.id), str(carol.id)])
    await world.send(carol, "hi all", int(group["id"]))
    listed = (await world.client.get("/api/v10/users/@me/channels", headers=world.bob.headers)).json()
    assert group["id"] in [ch["id"] for ch in listed]
    assert (await world.client.get(f"/api/v10/channels/{group['id']}/messages", headers=world.owner.headers)).status_code == 403
    r = await world.client.post("/api/v10/users/@me/channels", json={"recipients": ["123"]}, headers=world.alice.headers)
    assert r.status_code == 404
