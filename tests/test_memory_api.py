"""The memory API: `/api/v10/townsquare/agents/{id}/memories` (add, list, search, forget), for
administrators only, with Discord-shaped errors, and 503 (never 500) when Chroma is away."""

from __future__ import annotations

from typing import Any

import httpx

from townsquare.platform.actions.context import Platform
from townsquare.platform.core.config import Settings

from .helpers import free_port, person, start_server
from .test_worker import found


async def _agent(platform: Platform) -> tuple[Any, dict[str, Any]]:
    admin = await person(platform, is_admin=True)
    _, cast = await found(platform, admin)
    return admin, cast[0]


async def test_add_search_list_and_forget(platform: Platform, client: httpx.AsyncClient) -> None:
    admin, agent = await _agent(platform)
    base = f"/api/v10/townsquare/agents/{agent['id']}/memories"
    party = await client.post(base, json={"text": "Isabella is hosting a Valentine's party at Hobbs Cafe on Friday", "importance": 8,
                                          "about": ["123"]}, headers=admin.headers)
    assert party.status_code == 201, party.text
    assert party.json()["kind"] == "observation" and party.json()["importance"] == 8 and party.json()["about"] == ["123"]
    chores = (await client.post(base, json={"text": "I need to buy flour and yeast", "kind": "observation"}, headers=admin.headers)).json()
    fact = await client.post(base, json={"kind": "fact", "fact": {"subject": "Isabella", "predicate": "works at", "object": "hobbs cafe"},
                                         "about": ["123"], "confidence": 0.8}, headers=admin.headers)
    assert fact.status_code == 201, fact.text
    assert fact.json()["fact"]["object"] == "hobbs cafe" and fact.json()["fact"]["confidence"] == 0.8

    found_ = (await client.get(base, params={"query": "is there a party?"}, headers=admin.headers)).json()
    assert found_["total"] == 3
    assert found_["memories"][0]["id"] == party.json()["id"]
    assert set(found_["memories"][0]["score"]) == {"total", "recency", "importance", "relevance", "similarity"}
    facts = (await client.get(base, params={"query": "where does Isabella work", "kind": "fact"}, headers=admin.headers)).json()
    assert [m["kind"] for m in facts["memories"]] == ["fact"]
    newest = (await client.get(base, params={"limit": 2}, headers=admin.headers)).json()
    assert len(newest["memories"]) == 2
    agent_obj = (await client.get(f"/api/v10/townsquare/agents/{agent['id']}", headers=admin.headers)).json()
    assert agent_obj["memory_count"] == 3

    assert (await client.delete(f"{base}/{chores['id']}", headers=admin.headers)).status_code == 204
    again = await client.delete(f"{base}/{chores['id']}", headers=admin.headers)
    assert again.status_code == 404 and again.json()["code"] == 10101
    gone = await client.delete(base, params={"about": "123"}, headers=admin.headers)
    assert gone.status_code == 200 and gone.json() == {"forgotten": 2}
    assert (await client.get(base, headers=admin.headers)).json()["total"] == 0
    log = await client.get(f"/api/v10/guilds/{agent['guild_id']}/audit-logs", headers=admin.headers)
    assert {e["action_type"] for e in log.json()["audit_log_entries"]} >= {206, 207}  # in the society's audit log


async def test_bad_input_is_refused_with_discord_shaped_errors(platform: Platform, client: httpx.AsyncClient) -> None:
    admin, agent = await _agent(platform)
    human = await person(platform)
    base = f"/api/v10/townsquare/agents/{agent['id']}/memories"
    assert (await client.get(base, headers=human.headers)).status_code == 403
    assert (await client.post(base, json={"text": "x"}, headers=human.headers)).status_code == 403
    assert (await client.get(base)).status_code == 401
    unknown = await client.get("/api/v10/townsquare/agents/42/memories", headers=admin.headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == 10100
    for body in ({"text": ""}, {"text": "x", "kind": "dream"}, {"text": "x", "importance": 11}, {"kind": "fact", "text": "x"},
                 {"text": "x" * 2001}, {"text": "x", "about": ["not a snowflake"]}, {"text": "bad\u0000byte"}, ["a list"]):
        r = await client.post(base, json=body, headers=admin.headers)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "code" in r.json() and "message" in r.json()
    for params in ({"limit": 0}, {"limit": 101}, {"kind": "dream"}, {"about": "-1"}, {"query": ""}):
        r = await client.get(base, params=params, headers=admin.headers)
        assert r.status_code == 400, (params, r.text)
    assert (await client.delete(f"{base}/not-hex!", headers=admin.headers)).status_code in (400, 404)
    assert (await client.delete(base, headers=admin.headers)).status_code == 400  # forgetting everything needs `about`


async def test_memory_store_away_is_503_not_500(platform: Platform, settings: Settings, services: Any) -> None:
    admin, agent = await _agent(platform)
    dead = start_server(settings, services.database_url, services.redis_url, chroma_url=f"http://127.0.0.1:{free_port()}")
    try:
        async with httpx.AsyncClient(base_url=dead.url, timeout=30) as c:
            r = await c.get(f"/api/v10/townsquare/agents/{agent['id']}/memories", params={"query": "hello"}, headers=admin.headers)
            assert r.status_code == 503 and r.json()["code"] == 130001
            r = await c.get(f"/api/v10/townsquare/agents/{agent['id']}", headers=admin.headers)
            assert r.status_code == 200 and r.json()["memory_count"] is None  # the registry still answers
    finally:
        dead.stop()
