"""The permission matrix: who can read, write, react, upload, delete where."""

from __future__ import annotations

import pytest

from townsquare.platform.core.permissions import P

from .helpers import Actor, World, person

VIEW, SEND, HISTORY, REACT, ATTACH = int(P.VIEW_CHANNEL), int(P.SEND_MESSAGES), int(P.READ_MESSAGE_HISTORY), int(P.ADD_REACTIONS), int(P.ATTACH_FILES)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def _attempts(world: World, actor: Actor, channel: int, target_msg: dict) -> dict[str, int]:
    """Status codes of each kind of action by `actor` in `channel`."""
    c, h = world.client, actor.headers
    out = {}
    out["read"] = (await c.get(f"/api/v10/channels/{channel}/messages", headers=h)).status_code
    out["write"] = (await c.post(f"/api/v10/channels/{channel}/messages", json={"content": "hi"}, headers=h)).status_code
    out["react"] = (await c.put(f"/api/v10/channels/{channel}/messages/{target_msg['id']}/reactions/%E2%9C%85/@me", headers=h)).status_code
    files = {"files[0]": ("a.png", PNG, "image/png")}
    out["upload"] = (await c.post(f"/api/v10/channels/{channel}/messages", data={"payload_json": '{"content": "f"}'}, files=files,
                                  headers=h)).status_code
    out["delete_other"] = (await c.delete(f"/api/v10/channels/{channel}/messages/{target_msg['id']}", headers=h)).status_code
    return out


ALLOWED = {"read": 200, "write": 200, "react": 204, "upload": 200}


@pytest.mark.parametrize(
    ("deny", "expected"),
    [
        (0, {**ALLOWED, "delete_other": 403}),
        (VIEW, {"read": 403, "write": 403, "react": 403, "upload": 403, "delete_other": 403}),
        (SEND, {**ALLOWED, "write": 403, "upload": 403, "delete_other": 403}),
        (HISTORY, {**ALLOWED, "read": 403, "react": 403, "delete_other": 403}),
        (REACT, {**ALLOWED, "react": 403, "delete_other": 403}),
        (ATTACH, {**ALLOWED, "upload": 403, "delete_other": 403}),
    ],
    ids=["member", "no-view", "no-send", "no-history", "no-react", "no-attach"],
)
async def test_member_overwrite_matrix(world: World, deny: int, expected: dict[str, int]) -> None:
    channel = await world.channel("matrix")
    target = await world.send(world.owner, "target", channel)
    if deny:
        r = await world.client.put(f"/api/v10/channels/{channel}/permissions/{world.alice.id}", json={"type": 1, "deny": str(deny)},
                                   headers=world.owner.headers)
        assert r.status_code == 204, r.text
    assert await _attempts(world, world.alice, channel, target) == expected


async def test_moderator_role_and_outsider(world: World) -> None:
    channel = await world.channel("modded")
    target = await world.send(world.alice, "target", channel)
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "mod", "permissions": str(int(P.MANAGE_MESSAGES))},
                                headers=world.owner.headers)
    role = r.json()["id"]
    assert (await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{role}",
                                   headers=world.owner.headers)).status_code == 204
    got = await _attempts(world, world.bob, channel, target)
    assert got == {**ALLOWED, "delete_other": 204}
    outsider = await person(world.platform)
    target2 = await world.send(world.alice, "target2", channel)
    got = await _attempts(world, outsider, channel, target2)
    assert got == {"read": 403, "write": 403, "react": 403, "upload": 403, "delete_other": 403}
    r = await world.client.get(f"/api/v10/guilds/{world.guild_id}", headers=outsider.headers)
    assert r.status_code == 404 and r.json()["code"] == 10004


async def test_private_channel_role_allow(world: World) -> None:
    """A private channel: @everyone denied VIEW, one role allowed; ADMINISTRATOR sees all."""
    channel = await world.channel("staff", permission_overwrites=[{"id": str(world.guild_id), "type": 0, "deny": str(VIEW)}])
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "staff"}, headers=world.owner.headers)
    staff = r.json()["id"]
    assert (await world.client.put(f"/api/v10/channels/{channel}/permissions/{staff}", json={"type": 0, "allow": str(VIEW)},
                                   headers=world.owner.headers)).status_code == 204
    await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.alice.id}/roles/{staff}", headers=world.owner.headers)
    listed = lambda actor: world.client.get(f"/api/v10/guilds/{world.guild_id}/channels", headers=actor.headers)  # noqa: E731
    assert str(channel) in [c["id"] for c in (await listed(world.alice)).json()]
    assert str(channel) not in [c["id"] for c in (await listed(world.bob)).json()]
    assert (await world.client.get(f"/api/v10/channels/{channel}/messages", headers=world.bob.headers)).status_code == 403
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "admin", "permissions": str(int(P.ADMINISTRATOR))},
                                headers=world.owner.headers)
    await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{r.json()['id']}", headers=world.owner.headers)
    assert (await world.client.get(f"/api/v10/channels/{channel}/messages", headers=world.bob.headers)).status_code == 200


async def test_role_hierarchy_and_escalation(world: World) -> None:
    """A role manager cannot grant permissions they lack, nor manage roles above their own."""
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles",
                                json={"name": "rolemgr", "permissions": str(int(P.MANAGE_ROLES)), "position": 2}, headers=world.owner.headers)
    mgr = r.json()["id"]
    await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.alice.id}/roles/{mgr}", headers=world.owner.headers)
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "evil", "permissions": str(int(P.ADMINISTRATOR))},
                                headers=world.alice.headers)
    assert r.status_code == 403
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "helper", "permissions": "0", "position": 1},
                                headers=world.alice.headers)
    assert r.status_code == 200
    assert (await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{r.json()['id']}",
                                   headers=world.alice.headers)).status_code == 204
    assert (await world.client.put(f"/api/v10/guilds/{world.guild_id}/members/{world.bob.id}/roles/{mgr}",
                                   headers=world.alice.headers)).status_code == 403  # not below her own top role
    assert (await world.client.patch(f"/api/v10/guilds/{world.guild_id}/roles/{mgr}", json={"permissions": str(int(P.ADMINISTRATOR))},
                                     headers=world.alice.headers)).status_code == 403


async def test_dm_privacy(world: World) -> None:
    r = await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.bob.id)}, headers=world.alice.headers)
    assert r.status_code == 200
    dm = r.json()
    assert dm["type"] == 1 and [u["id"] for u in dm["recipients"]] == [str(world.bob.id)]
    again = (await world.client.post("/api/v10/users/@me/channels", json={"recipient_id": str(world.alice.id)}, headers=world.bob.headers)).json()
    assert again["id"] == dm["id"]  # one DM per pair, whoever opens it
    await world.send(world.alice, "secret", int(dm["id"]))
    assert (await world.client.get(f"/api/v10/channels/{dm['id']}/messages", headers=world.bob.headers)).status_code == 200
    for outsider in (world.owner, world.bot):
        assert (await world.client.get(f"/api/v10/channels/{dm['id']}/messages", headers=outsider.headers)).status_code == 403
        r = await world.client.post(f"/api/v10/channels/{dm['id']}/messages", json={"content": "intrude"}, headers=outsider.headers)
        assert r.status_code == 403


async def test_removing_oneself_through_the_members_route_is_a_kick(world: World) -> None:
    """As on Discord: `DELETE /guilds/{g}/members/{own id}` needs KICK_MEMBERS; leaving is `DELETE /users/@me/guilds/{g}`."""
    member = f"/api/v10/guilds/{world.guild_id}/members"
    r = await world.client.delete(f"{member}/{world.alice.id}", headers=world.alice.headers)
    assert r.status_code == 403 and r.json()["code"] == 50013, r.text
    assert (await world.client.get(f"{member}/{world.alice.id}", headers=world.owner.headers)).status_code == 200  # still a member

    r = await world.client.delete(f"/api/v10/users/@me/guilds/{world.guild_id}", headers=world.alice.headers)
    assert r.status_code == 204, r.text
    assert (await world.client.get(f"{member}/{world.alice.id}", headers=world.owner.headers)).status_code == 404
    assert world.guild_id not in [int(g["id"]) for g in (await world.client.get("/api/v10/users/@me/guilds", headers=world.alice.headers)).json()]
    r = await world.client.delete(f"/api/v10/users/@me/guilds/{world.guild_id}", headers=world.alice.headers)
    assert r.status_code == 404, r.text  # no longer a member: Unknown Guild

    # the owner cannot leave (Discord: delete the guild instead), nor kick themself
    r = await world.client.delete(f"/api/v10/users/@me/guilds/{world.guild_id}", headers=world.owner.headers)
    assert 400 <= r.status_code < 500 and r.status_code != 404, r.text
    r = await world.client.delete(f"{member}/{world.owner.id}", headers=world.owner.headers)
    assert r.status_code == 403, r.text

    # with KICK_MEMBERS, the members route works (on someone else, as before)
    r = await world.client.post(f"/api/v10/guilds/{world.guild_id}/roles", json={"name": "kicker", "permissions": str(int(P.KICK_MEMBERS)),
                                                                                  "position": 1}, headers=world.owner.headers)
    kicker = r.json()["id"]
    assert (await world.client.put(f"{member}/{world.bob.id}/roles/{kicker}", headers=world.owner.headers)).status_code == 204
    r = await world.client.delete(f"{member}/{world.bot.id}", headers=world.bob.headers)
    assert r.status_code == 204, r.text
