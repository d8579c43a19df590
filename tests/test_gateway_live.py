"""Live sessions see exactly what their user may see, and a permission change takes effect
on them at once."""

from __future__ import annotations

from townsquare.platform.core.permissions import P

from .gwclient import GatewayClient
from .helpers import RunningServer, World, make_bot, person

VIEW = int(P.VIEW_CHANNEL)
BOT_INTENTS = (1 << 0) | (1 << 1) | (1 << 9) | (1 << 12)  # guilds, members, guild + direct messages; no MESSAGE_CONTENT


async def _connect(server: RunningServer, token: str, intents: int | None = None) -> GatewayClient:
    gw = GatewayClient(server.url)
    await gw.identify(token, intents=intents)
    return gw


async def _settle(*clients: GatewayClient, marker_world: World, channel: int) -> None:
    """Posts a marker visible to everyone and waits for it: every earlier event has arrived."""
    marker = await marker_world.send(marker_world.owner, "marker", channel)
    for gw in clients:
        while True:
            frame = await gw.next(t="MESSAGE_CREATE")
            if frame["d"]["id"] == marker["id"]:
                break


def _message_ids(gw: GatewayClient) -> set[str]:
    return {d["id"] for d in gw.events("MESSAGE_CREATE")}


async def test_private_channel_filtering_and_live_permission_changes(world: World, server: RunningServer) -> None:
    c, owner = world.client, world.owner.headers
    secret = await world.channel("secret", permission_overwrites=[{"id": str(world.guild_id), "type": 0, "deny": str(VIEW)},
                                                                  {"id": str(world.alice.id), "type": 1, "allow": str(VIEW)}])
    alice, bob = await _connect(server, world.alice.token), await _connect(server, world.bob.token)
    hidden = await world.send(world.owner, "for alice only", secret)
    await _settle(alice, bob, marker_world=world, channel=world.general_id)
    assert hidden["id"] in _message_ids(alice) and hidden["id"] not in _message_ids(bob)

    # bob is let in: he is told the channel exists, then hears what follows
    await c.put(f"/api/v10/channels/{secret}/permissions/{world.bob.id}", json={"type": 1, "allow": str(VIEW)}, headers=owner)
    created = await bob.next(t="CHANNEL_CREATE")
    assert created["d"]["id"] == str(secret)
    shared = await world.send(world.owner, "for both", secret)
    # alice is shut out: she is told the channel is gone, and hears nothing more from it
    await c.put(f"/api/v10/channels/{secret}/permissions/{world.alice.id}", json={"type": 1, "deny": str(VIEW)}, headers=owner)
    gone = await alice.next(t="CHANNEL_DELETE")
    assert gone["d"]["id"] == str(secret)
    late = await world.send(world.owner, "bob only now", secret)
    await _settle(alice, bob, marker_world=world, channel=world.general_id)
    assert {shared["id"], late["id"]} <= _message_ids(bob)
    assert shared["id"] in _message_ids(alice) and late["id"] not in _message_ids(alice)

    # a role change: @everyone loses VIEW on general; a role restores it for bob only
    role = (await c.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "readers"}, headers=owner)).json()["id"]
    await c.put(f"/api/v10/channels/{world.general_id}/permissions/{world.guild_id}", json={"type": 0, "deny": str(VIEW)}, headers=owner)
    await c.put(f"/api/v10/channels/{world.general_id}/permissions/{role}", json={"type": 0, "allow": str(VIEW)}, headers=owner)
    await c.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{role}", headers=owner)
    quiet = await world.send(world.owner, "readers only", world.general_id)
    await _settle(bob, marker_world=world, channel=secret)
    dm = (await c.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.alice.id)}, headers=owner)).json()
    await _settle(alice, marker_world=world, channel=int(dm["id"]))
    assert quiet["id"] in _message_ids(bob) and quiet["id"] not in _message_ids(alice)
    await alice.close()
    await bob.close()


async def test_dms_intents_and_message_content(world: World, server: RunningServer) -> None:
    bot = await _connect(server, world.bot.token, BOT_INTENTS)
    bob = await _connect(server, world.bob.token)
    dm = (await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.bot.id)}, headers=world.alice.headers)).json()
    private = await world.send(world.alice, "just between us", int(dm["id"]))
    got = await bot.next(t="MESSAGE_CREATE")
    assert got["d"]["id"] == private["id"] and got["d"]["content"] == "just between us"  # DMs keep content
    plain = await world.send(world.alice, "no content for bots without the intent")
    mention = await world.send(world.alice, f"<@{world.bot.id}> but mentions keep it")
    frames = [await bot.next(t="MESSAGE_CREATE"), await bot.next(t="MESSAGE_CREATE")]
    by_id = {f["d"]["id"]: f["d"] for f in frames}
    assert by_id[plain["id"]]["content"] == "" and by_id[mention["id"]]["content"].startswith("<@")
    await _settle(bob, marker_world=world, channel=world.general_id)
    assert private["id"] not in _message_ids(bob)
    # no GUILD_MESSAGE_REACTIONS intent: reactions never reach the bot
    await world.client.put(f"/api/v10/channels/{world.general_id}/messages/{plain['id']}/reactions/%E2%9C%85/@me", headers=world.alice.headers)
    await bob.next(t="MESSAGE_REACTION_ADD")
    await _settle(bot, marker_world=world, channel=world.general_id)
    assert bot.events("MESSAGE_REACTION_ADD") == []
    await bot.close()
    await bob.close()


async def test_join_and_kick_reach_live_sessions(world: World, server: RunningServer) -> None:
    carol = await person(world.platform)
    gw = await _connect(server, carol.token)
    invite = (await world.client.post(f"/api/v10/channels/{world.general_id}/invites", json={}, headers=world.owner.headers)).json()
    await world.client.post(f"/api/v10/invites/{invite['code']}", headers=carol.headers)
    joined = await gw.next(t="GUILD_CREATE")
    assert joined["d"]["id"] == str(world.guild_id)
    hello = await world.send(world.alice, "welcome carol")
    assert (await gw.next(t="MESSAGE_CREATE"))["d"]["id"] == hello["id"]
    await world.client.delete(f"/api/v10/guilds/{world.guild_id}/members/{carol.id}", headers=world.owner.headers)
    left = await gw.next(t="GUILD_DELETE")
    assert left["d"]["id"] == str(world.guild_id)
    after = await world.send(world.alice, "carol is gone")
    # prove the absence: a later DM arrives, the guild message before it never did
    dm = (await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(carol.id)}, headers=world.alice.headers)).json()
    marker = await world.send(world.alice, "dm marker", int(dm["id"]))
    while (await gw.next(t="MESSAGE_CREATE"))["d"]["id"] != marker["id"]:
        pass
    assert after["id"] not in _message_ids(gw)
    await gw.close()


async def test_revoked_token_closes_sessions(world: World, server: RunningServer) -> None:
    bot = await make_bot(world.platform)
    gw = await _connect(server, bot.token, 1)
    r = await world.client.post(f"/api/v10/townsquare/bots/{bot.id}/reset-token", headers=world.owner.headers)
    assert r.status_code in (200, 403)
    if r.status_code == 403:  # bots made by the fixture have no owner: revoke by logging out instead
        await world.client.post("/api/v10/auth/logout", headers=bot.headers)
    assert await gw.closed() == 4004


async def test_profile_change_reaches_guild_members(world: World, server: RunningServer) -> None:
    bob = await _connect(server, world.bob.token)
    await world.client.patch("/api/v10/users/@me", json={"global_name": "Alice the Great"}, headers=world.alice.headers)
    while True:
        frame = await bob.next(t="GUILD_MEMBER_UPDATE")
        if frame["d"]["user"]["id"] == str(world.alice.id):
            break
    assert frame["d"]["user"]["global_name"] == "Alice the Great" and frame["d"]["guild_id"] == str(world.guild_id)
    await bob.close()
