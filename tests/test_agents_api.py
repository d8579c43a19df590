"""The agent registry and manual override through /api/v10/townsquare (admin only)."""

from __future__ import annotations

from typing import Any

import httpx

from .helpers import World, assert_discord_error, name, person

PERSONA = {"name": "Ana Test", "bio": "A gardener who likes to chat about tomatoes.",
           "traits": {"extraversion": 0.8, "neuroticism": 0.2}, "interests": ["gardening", "cooking"],
           "style": "short, warm sentences"}


async def _admin(world: World) -> Any:
    return await person(world.platform, is_admin=True)


async def _create(world: World, admin: Any, **persona: Any) -> dict[str, Any]:
    body = {"guild_id": str(world.guild_id), "persona": {**PERSONA, "name": name("Ag"), **persona}}
    r = await world.client.post("/api/v10/townsquare/agents", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def test_create_list_modify_delete_agent(world: World) -> None:
    admin = await _admin(world)
    agent = await _create(world, admin)
    assert agent["state"] == "active" and agent["status"] == "active"
    assert agent["user"]["bot"] is True and agent["persona"]["traits"]["extraversion"] == 0.8
    assert -1 <= agent["mood"]["valence"] <= 1 and agent["mood"]["label"]
    # the agent is a member of the society: the bot user shows in the guild's members
    members = (await world.client.get(f"/api/v10/guilds/{world.guild_id}/members?limit=100", headers=world.owner.headers)).json()
    assert agent["id"] in {m["user"]["id"] for m in members}

    listed = (await world.client.get(f"/api/v10/townsquare/agents?guild_id={world.guild_id}", headers=admin.headers)).json()
    assert [a["id"] for a in listed] == [agent["id"]]

    r = await world.client.patch(f"/api/v10/townsquare/agents/{agent['id']}",
                                 json={"persona": {"bio": "Now a baker.", "traits": {"openness": 0.9}}}, headers=admin.headers)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["persona"]["bio"] == "Now a baker."
    assert changed["persona"]["traits"] == {**agent["persona"]["traits"], "openness": 0.9}  # merged, not replaced

    r = await world.client.post(f"/api/v10/townsquare/agents/{agent['id']}/pause", json={"reason": "too chatty"}, headers=admin.headers)
    assert r.json()["state"] == "paused" and r.json()["state_reason"] == "too chatty"
    r = await world.client.post(f"/api/v10/townsquare/agents/{agent['id']}/mute", headers=admin.headers)
    assert r.json()["state"] == "muted"
    r = await world.client.post(f"/api/v10/townsquare/agents/{agent['id']}/resume", headers=admin.headers)
    assert r.json()["state"] == "active" and r.json()["state_reason"] is None

    audit = (await world.client.get(f"/api/v10/guilds/{world.guild_id}/audit-logs", headers=world.owner.headers)).json()
    kinds = [e["action_type"] for e in audit["audit_log_entries"] if e["target_id"] == agent["id"]]
    assert {200, 201, 203} <= set(kinds)

    r = await world.client.delete(f"/api/v10/townsquare/agents/{agent['id']}", headers=admin.headers)
    assert r.status_code == 204
    assert_discord_error(await world.client.get(f"/api/v10/townsquare/agents/{agent['id']}", headers=admin.headers), 404, 10100)
    members = (await world.client.get(f"/api/v10/guilds/{world.guild_id}/members?limit=100", headers=world.owner.headers)).json()
    assert agent["id"] not in {m["user"]["id"] for m in members}


async def test_post_as_agent_is_the_agents_message_and_audited(world: World) -> None:
    admin = await _admin(world)
    agent = await _create(world, admin)
    r = await world.client.post(f"/api/v10/townsquare/agents/{agent['id']}/messages",
                                json={"channel_id": str(world.general_id), "content": "hello from the puppet", "nonce": "once"},
                                headers=admin.headers)
    assert r.status_code == 201, r.text
    msg = r.json()
    assert msg["author"]["id"] == agent["id"] and msg["content"] == "hello from the puppet"
    again = await world.client.post(f"/api/v10/townsquare/agents/{agent['id']}/messages",
                                    json={"channel_id": str(world.general_id), "content": "hello again", "nonce": "once"},
                                    headers=admin.headers)
    assert again.json()["id"] == msg["id"]  # nonce: posted at most once
    audit = (await world.client.get(f"/api/v10/guilds/{world.guild_id}/audit-logs?action_type=204", headers=world.owner.headers)).json()
    assert any(e["options"]["message_id"] == msg["id"] for e in audit["audit_log_entries"])


async def test_non_admins_and_bad_input_are_refused(world: World) -> None:
    admin = await _admin(world)
    agent = await _create(world, admin)
    for method, path, body in [("GET", "/api/v10/townsquare/agents", None),
                               ("POST", "/api/v10/townsquare/agents", {"guild_id": str(world.guild_id), "persona": PERSONA}),
                               ("POST", f"/api/v10/townsquare/agents/{agent['id']}/pause", None),
                               ("POST", f"/api/v10/townsquare/agents/{agent['id']}/messages",
                                {"channel_id": str(world.general_id), "content": "x"}),
                               ("DELETE", f"/api/v10/townsquare/agents/{agent['id']}", None)]:
        r = await world.client.request(method, path, json=body, headers=world.owner.headers)  # a guild owner, not an admin
        assert_discord_error(r, 403, 50013)
    assert_discord_error(await world.client.get("/api/v10/townsquare/agents"), 401)

    bad_personas = [{**PERSONA, "traits": {"extraversion": 1.5}}, {**PERSONA, "nonsense": 1}, {"name": "x"},
                    {**PERSONA, "name": "bad\u0000name"}, {**PERSONA, "interests": ["a"] * 50}, "not an object"]
    for persona in bad_personas:
        r = await world.client.post("/api/v10/townsquare/agents", json={"guild_id": str(world.guild_id), "persona": persona},
                                    headers=admin.headers)
        assert_discord_error(r, 400)
    r = await world.client.post("/api/v10/townsquare/agents", json={"guild_id": "1", "persona": {**PERSONA, "name": name("Ag")}},
                                headers=admin.headers)
    assert_discord_error(r, 404)
    r = await world.client.patch(f"/api/v10/townsquare/agents/{agent['id']}", json={"state": "asleep"}, headers=admin.headers)
    assert_discord_error(r, 400)
    r = await world.client.patch(f"/api/v10/townsquare/agents/{agent['id']}", json={"persona": {"traits": {"openness": -1}}},
                                 headers=admin.headers)
    assert_discord_error(r, 400)
    assert_discord_error(await world.client.get("/api/v10/townsquare/agents/123", headers=admin.headers), 404, 10100)
    # a duplicate name is the username rule's error
    r = await world.client.post("/api/v10/townsquare/agents", json={"guild_id": str(world.guild_id),
                                                                     "persona": {**PERSONA, "name": agent["name"]}}, headers=admin.headers)
    assert_discord_error(r, 400, 50035)
    # nothing half-made: the failed creations left no agents behind
    listed = (await world.client.get(f"/api/v10/townsquare/agents?guild_id={world.guild_id}", headers=admin.headers)).json()
    assert [a["id"] for a in listed] == [agent["id"]]


async def test_society_found_pause_resume(world: World, client: httpx.AsyncClient) -> None:
    from townsquare.agents.society.persona import load_society
    from townsquare.platform.actions import agents

    admin = await _admin(world)
    spec = load_society("village")
    spec = spec.model_copy(update={"agents": [a.model_copy(update={"name": name("V")}) for a in spec.agents]})
    society_name = name("society")
    guild_id = await agents.do_found_society(world.platform, admin.id, spec, society_name)
    assert await agents.do_found_society(world.platform, admin.id, spec, society_name) == guild_id  # idempotent
    listed = (await client.get(f"/api/v10/townsquare/agents?guild_id={guild_id}", headers=admin.headers)).json()
    assert len(listed) == len(spec.agents)
    channels = (await client.get(f"/api/v10/guilds/{guild_id}/channels", headers=admin.headers)).json()
    assert {c["name"] for c in channels} >= {c.name for c in spec.channels}
    r = await client.post(f"/api/v10/townsquare/societies/{guild_id}/pause", json={"reason": "night"}, headers=admin.headers)
    assert r.json()["paused"] is True and r.json()["paused_reason"] == "night"
    r = await client.post(f"/api/v10/townsquare/societies/{guild_id}/resume", headers=admin.headers)
    assert r.json()["paused"] is False
    assert_discord_error(await client.post("/api/v10/townsquare/societies/1/pause", headers=admin.headers), 404)
