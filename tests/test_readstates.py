"""Read states: unread and mention counts stay right through acks, edits, deletes and a
fresh session (a reconnecting client asks again and gets the same answer)."""

from __future__ import annotations

from .helpers import Actor, World


async def _state(world: World, actor: Actor, channel: int) -> dict:
    r = await world.client.get("/api/v10/users/@me/read-states", headers=actor.headers)
    assert r.status_code == 200
    return next(e for e in r.json()["entries"] if e["id"] == str(channel))


async def test_unread_and_mentions(world: World) -> None:
    channel = await world.channel("reads")
    first = await world.send(world.alice, "hello")
    ack = await world.client.post(f"/api/v10/channels/{channel}/messages/{first['id']}/ack", headers=world.bob.headers)
    assert ack.status_code == 200
    await world.send(world.alice, "one", channel)
    ping = await world.send(world.alice, f"two <@{world.bob.id}>", channel)
    await world.send(world.bob, "my own message does not count", channel)
    state = await _state(world, world.bob, channel)
    assert (state["unread_count"], state["mention_count"]) == (2, 1)
    # editing the mention away, then deleting a message: the counts follow
    await world.client.patch(f"/api/v10/channels/{channel}/messages/{ping['id']}", json={"content": "two"}, headers=world.alice.headers)
    assert (await _state(world, world.bob, channel))["mention_count"] == 0
    await world.client.patch(f"/api/v10/channels/{channel}/messages/{ping['id']}", json={"content": f"two <@{world.bob.id}>"},
                             headers=world.alice.headers)
    assert (await _state(world, world.bob, channel))["mention_count"] == 1
    await world.client.delete(f"/api/v10/channels/{channel}/messages/{ping['id']}", headers=world.alice.headers)
    state = await _state(world, world.bob, channel)
    assert (state["unread_count"], state["mention_count"]) == (1, 0)
    # a role mention and @everyone count as mentions too
    role = (await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "pingable", "mentionable": True},
                                    headers=world.owner.headers)).json()["id"]
    await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{role}", headers=world.owner.headers)
    await world.send(world.alice, f"<@&{role}> look", channel)
    last = await world.send(world.owner, "@everyone look", channel)
    state = await _state(world, world.bob, channel)
    assert (state["unread_count"], state["mention_count"]) == (3, 2)
    # acking the last message clears everything; a "new session" (fresh token) sees the same
    await world.client.post(f"/api/v10/channels/{channel}/messages/{last['id']}/ack", headers=world.bob.headers)
    login = await world.client.post("/api/v10/auth/login", json={"login": (await _me(world, world.bob))["username"],
                                                                  "password": "correct horse battery"})
    fresh = Actor(world.bob.id, login.json()["token"])
    state = await _state(world, fresh, channel)
    assert (state["unread_count"], state["mention_count"], state["last_message_id"]) == (0, 0, last["id"])


async def test_dm_messages_count_as_mentions(world: World) -> None:
    dm = (await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.bob.id)}, headers=world.alice.headers)).json()
    await world.send(world.alice, "psst", int(dm["id"]))
    state = await _state(world, world.bob, int(dm["id"]))
    assert (state["unread_count"], state["mention_count"]) == (1, 1)


async def test_ack_needs_access(world: World) -> None:
    channel = await world.channel("hidden", permission_overwrites=[{"id": str(world.guild_id), "type": 0, "deny": "1024"}])
    msg = await world.send(world.owner, "x", channel)
    r = await world.client.post(f"/api/v10/channels/{channel}/messages/{msg['id']}/ack", headers=world.bob.headers)
    assert r.status_code == 403
    entries = (await world.client.get("/api/v10/users/@me/read-states", headers=world.bob.headers)).json()["entries"]
    assert str(channel) not in [e["id"] for e in entries]


async def _me(world: World, actor: Actor) -> dict:
    return (await world.client.get("/api/v10/users/@me", headers=actor.headers)).json()
