"""The admin dashboard's API (`/api/v10/townsquare/dashboard/...`): its shapes on a real
society, the agents' live status from the worker's Redis signal, the log store read across
processes, administrators only, and hostile query parameters refused with a 400."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import httpx
import pytest

from townsquare.platform.actions import agents, dashboard
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.core.logstore import StoreHandler
from townsquare.platform.core.metrics import GATE_REASONS

from .helpers import Actor, assert_discord_error, name, person
from .test_worker import society_with_human

BASE = "/api/v10/townsquare/dashboard"


async def society(platform: Platform, client: httpx.AsyncClient) -> dict[str, Any]:
    admin, guild_id, cast, human, general = await society_with_human(platform, client, size=3)
    me = await authenticate(platform, "Bearer", admin.token)
    return {"admin": admin, "me": me, "guild_id": guild_id, "cast": cast, "human": human, "general": general}


@pytest.fixture
async def soc(platform: Platform, client: httpx.AsyncClient) -> dict[str, Any]:
    return await society(platform, client)


async def test_overview_counts_messages_llm_calls_and_errors(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin, guild_id, cast = soc["admin"], soc["guild_id"], soc["cast"]
    for i in range(3):
        r = await client.post(f"/api/v10/channels/{soc['general']}/messages", json={"content": f"hello {i}"}, headers=soc["human"].headers)
        assert r.status_code == 200
    a, b = int(cast[0]["id"]), int(cast[1]["id"])
    call = {"guild_id": guild_id, "task": "reply", "backend": "local", "model": "m", "prompt_tokens": 10, "completion_tokens": 5}
    await agents.record_llm_calls(platform, [
        {**call, "agent_id": a, "latency_ms": 100, "outcome": "ok", "fallback_step": 0},
        {**call, "agent_id": b, "latency_ms": 300, "outcome": "ok", "fallback_step": 1},
        {**call, "agent_id": b, "latency_ms": 500, "outcome": "timeout", "fallback_step": 0, "error": "slow"},
    ])
    await agents.record_turns(platform, [{"agent_id": a, "guild_id": guild_id, "channel_id": soc["general"], "trigger": "mention",
                                          "outcome": "error", "llm_ms": 0, "total_ms": 10}])
    r = await client.get(f"{BASE}/overview", params={"guild_id": guild_id, "minutes": 15}, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["guild_id"] == str(guild_id) and body["window_minutes"] == 15 and len(body["series"]) == 15
    assert body["agents"] == {"total": 3, "by_status": {"idle": 3}}
    assert body["messages"]["total"] == 3 and body["messages"]["per_minute"] == round(3 / 15, 2)
    assert sum(p["messages"] for p in body["series"]) == 3 and body["series"][-1]["t"] > body["series"][0]["t"]
    llm = body["llm"]
    assert llm["calls"] == 3 and llm["errors"] == 1 and llm["fallback_rate"] == 0.5 and llm["avg_ms"] == 300.0
    assert llm["p50_ms"] == 300.0 and llm["tokens"] == 45
    assert body["errors"]["llm"] == 1 and body["errors"]["turns"] == 1 and isinstance(body["errors"]["logs"], int)
    assert {m["agent_id"] for m in body["moods"]} == {c["id"] for c in cast}
    assert all(isinstance(m["valence"], float) and m["label"] for m in body["moods"])
    # the whole instance (no guild) counts at least this society
    r = await client.get(f"{BASE}/overview", headers=admin.headers)
    assert r.status_code == 200 and r.json()["llm"]["calls"] >= 3 and r.json()["guild_id"] is None


async def test_live_status_merges_the_workers_signal(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin, cast = soc["admin"], soc["cast"]
    prefix = platform.settings.redis_prefix
    a, b, c = (int(x["id"]) for x in cast)

    async def statuses() -> dict[int, str]:
        r = await client.get(f"{BASE}/agents", params={"guild_id": soc["guild_id"]}, headers=admin.headers)
        assert r.status_code == 200, r.text
        return {int(x["id"]): x["live_status"] for x in r.json()}

    assert await statuses() == {a: "idle", b: "idle", c: "idle"}
    await dashboard.signal_activity(platform.redis, prefix, a, "thinking", 30, soc["general"])
    await dashboard.signal_activity(platform.redis, prefix, b, "speaking", 30)
    await dashboard.signal_activity(platform.redis, prefix, c, "thinking", 30)
    await agents.do_set_state(platform, soc["me"], c, "paused", "test")
    assert await statuses() == {a: "thinking", b: "speaking", c: "paused"}
    # the end of a turn clears "thinking" but lets a fresh "speaking" run out
    await dashboard.end_activity(platform.redis, prefix, a)
    await dashboard.end_activity(platform.redis, prefix, b)
    assert await statuses() == {a: "idle", b: "speaking", c: "paused"}
    r = await client.get(f"{BASE}/agents", params={"guild_id": soc["guild_id"]}, headers=admin.headers)
    row = next(x for x in r.json() if int(x["id"]) == b)
    assert row["activity"]["activity"] == "speaking" and row["last_turn"] is None and "memory_count" in row
    await agents.record_turns(platform, [{"agent_id": b, "guild_id": soc["guild_id"], "channel_id": soc["general"],
                                          "trigger": "roll", "outcome": "posted", "llm_ms": 5, "total_ms": 10}])
    r = await client.get(f"{BASE}/agents", params={"guild_id": soc["guild_id"]}, headers=admin.headers)
    row = next(x for x in r.json() if int(x["id"]) == b)
    assert row["last_turn"]["outcome"] == "posted" and row["last_turn"]["trigger"] == "roll"


async def test_each_agent_shows_its_last_failure_in_words(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    """The worker says why a turn failed ("error" of its record); the agents list shows each
    agent's last failure, also after later turns succeeded, and older records without a reason
    by their outcome."""
    admin, g, general = soc["admin"], soc["guild_id"], soc["general"]
    a, b, c = (int(x["id"]) for x in soc["cast"])
    turn = {"guild_id": g, "channel_id": general, "trigger": "mention", "llm_ms": 0, "total_ms": 10}
    rambling = "the quality gate rejected every candidate\n  (wrong_voice, off_topic) " + "and more " * 60
    await agents.record_turns(platform, [
        {**turn, "agent_id": a, "outcome": "timeout", "error": "the model did not answer in 30 s"},
        {**turn, "agent_id": b, "outcome": "error"},  # a record from before reasons were written
        {**turn, "agent_id": c, "outcome": "posted"},
    ])
    await agents.record_turns(platform, [
        {**turn, "agent_id": a, "outcome": "silent", "error": rambling},  # a turn may fail without an error outcome
        {**turn, "agent_id": a, "outcome": "posted", "trigger": "roll"},  # later success: the failure stays shown
        {**turn, "agent_id": c, "outcome": "silent", "error": "   "},  # blank: no reason, and not a failure
    ])

    r = await client.get(f"{BASE}/agents", params={"guild_id": g}, headers=admin.headers)
    assert r.status_code == 200, r.text
    rows = {int(x["id"]): x for x in r.json()}
    failure = rows[a]["last_failure"]
    assert failure["outcome"] == "silent" and failure["trigger"] == "mention" and failure["channel_id"] == str(general)
    assert failure["error"].startswith("the quality gate rejected every candidate (wrong_voice, off_topic) and more")
    assert len(failure["error"]) == 300 and failure["error"].endswith("…") and "\n" not in failure["error"]
    assert failure["created_at"] and int(failure["id"]) < int(rows[a]["last_turn"]["id"])
    assert rows[a]["last_turn"]["outcome"] == "posted"
    assert rows[b]["last_failure"]["outcome"] == "error" and rows[b]["last_failure"]["error"] is None
    assert rows[c]["last_failure"] is None
    # the agent's turn log carries the reason too
    r = await client.get(f"/api/v10/townsquare/agents/{a}/turns", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert [t["error"] for t in r.json()][-1] == "the model did not answer in 30 s"


async def test_overview_counts_gate_rejections_by_reason(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin, g = soc["admin"], soc["guild_id"]
    a = int(soc["cast"][0]["id"])
    call = {"agent_id": a, "guild_id": g, "task": "reply", "backend": "local", "model": "m", "prompt_tokens": 10,
            "completion_tokens": 5, "latency_ms": 200, "fallback_step": 0, "error": None}
    await agents.record_llm_calls(platform, [
        {**call, "outcome": "rejected", "error": "gate:wrong_voice"},
        {**call, "outcome": "rejected", "error": "gate:wrong_voice"},
        {**call, "outcome": "rejected", "error": "gate:off_topic"},
        {**call, "outcome": "rejected", "error": "gate:a_new_reason"},  # a reason this server does not know yet
        {**call, "outcome": "ok"},
        {**call, "outcome": "error", "error": "gate:wrong_voice"},  # not a rejection
    ])
    r = await client.get(f"{BASE}/overview", params={"guild_id": g, "minutes": 15}, headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    gate = body["gate_rejections"]
    counts = {x["reason"]: x["count"] for x in gate["by_reason"]}
    assert gate["total"] == 4 and counts.pop("wrong_voice") == 2 and counts.pop("off_topic") == 1 and counts.pop("a_new_reason") == 1
    assert set(counts) == set(GATE_REASONS) - {"wrong_voice", "off_topic"} and not any(counts.values())  # every reason has its row
    assert [x["reason"] for x in gate["by_reason"]][:len(GATE_REASONS)] == list(GATE_REASONS)
    # a rejected call was answered by the model: not an LLM error
    assert body["llm"]["errors"] == 1 and body["llm"]["calls"] == 6
    # another society's rejections are not this one's
    other = await society(platform, client)
    r = await client.get(f"{BASE}/overview", params={"guild_id": other["guild_id"], "minutes": 15}, headers=admin.headers)
    assert r.json()["gate_rejections"]["total"] == 0


async def test_memory_counts_are_one_call_for_all_agents(platform: Platform) -> None:
    """A large society's page asks the memory once for every count (Memories.count_many), and a
    memory that fails leaves the counts unknown, never the page broken."""
    class Store:
        calls: list[list[int]] = []

        async def count_many(self, agent_ids: list[int]) -> dict[int, int]:
            Store.calls.append(list(agent_ids))
            return {a: a * 2 for a in agent_ids}

    class Broken:
        async def count_many(self, agent_ids: list[int]) -> dict[int, int]:
            raise ConnectionError("away")

    counting = replace(platform)
    counting.__dict__["memory"] = Store()  # (Platform.memory is a cached property)
    ids = list(range(1, 41))
    assert await dashboard._memory_counts(counting, ids) == {i: i * 2 for i in ids}
    assert Store.calls == [ids]
    counting.__dict__["memory"] = Broken()
    assert await dashboard._memory_counts(counting, ids) == dict.fromkeys(ids)


async def test_channel_activity_buckets(client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin, guild_id = soc["admin"], soc["guild_id"]
    for i in range(4):
        await client.post(f"/api/v10/channels/{soc['general']}/messages", json={"content": f"m{i}"}, headers=soc["human"].headers)
    r = await client.get(f"{BASE}/channels/activity", params={"guild_id": guild_id, "minutes": 60, "bucket_minutes": 10},
                         headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket_minutes"] == 10 and len(body["buckets"]) == 6
    general = next(c for c in body["channels"] if c["id"] == str(soc["general"]))
    assert general["total"] == 4 and general["counts"][-1] == 4 and len(general["counts"]) == 6
    assert body["channels"][0]["id"] == str(soc["general"])  # busiest first
    assert all(c["total"] == 0 for c in body["channels"][1:])


async def test_logs_from_the_store(client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin = soc["admin"]
    marker = name("marker")
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, StoreHandler))
    logging.getLogger("townsquare.test.dashboard").warning("a warning with %s", marker, extra={"agent": 42})
    logging.getLogger("townsquare.test.other").error("an error with %s", marker)
    assert handler.flush(timeout=30)  # both records are in the stream now

    async def found(**params: Any) -> list[dict[str, Any]]:
        r = await client.get(f"{BASE}/logs", params={"q": marker, **params}, headers=admin.headers)
        assert r.status_code == 200, r.text
        return r.json()["records"]

    records = await found()
    assert [r["level"] for r in records] == ["error", "warning"]  # newest first
    warning = records[1]
    assert warning["logger"] == "townsquare.test.dashboard" and marker in warning["msg"] and warning["fields"]["agent"] == 42
    assert warning["process"] and warning["ts"].endswith("+00:00") and "-" in warning["id"]
    assert [r["level"] for r in await found(level="error")] == ["error"]
    assert [r["logger"] for r in await found(logger="townsquare.test.dash")] == ["townsquare.test.dashboard"]
    assert await found(until="2001-01-01T00:00:00Z") == []
    assert len(await found(since="2001-01-01T00:00:00Z")) == 2
    # paging: one at a time, then on from the cursor
    r = await client.get(f"{BASE}/logs", params={"q": marker, "limit": 1}, headers=admin.headers)
    first = r.json()
    assert [x["level"] for x in first["records"]] == ["error"] and first["next_before"]
    r = await client.get(f"{BASE}/logs", params={"q": marker, "limit": 1, "before": first["next_before"]}, headers=admin.headers)
    assert [x["level"] for x in r.json()["records"]] == ["warning"]


async def test_config_masks_secrets_and_edits_revival_topics(platform: Platform, client: httpx.AsyncClient,
                                                             soc: dict[str, Any]) -> None:
    admin, guild_id = soc["admin"], soc["guild_id"]
    r = await client.get(f"{BASE}/config", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = {s["name"]: s for s in body["settings"]}
    assert by_name["chain_cap"]["group"] == "scheduler" and by_name["chain_cap"]["value"] == platform.settings.chain_cap
    assert by_name["s3_secret_key"]["secret"] is True
    for item in body["settings"]:
        if item["secret"] and item["value"] and "://" not in str(item["value"]):
            assert item["value"] == "***", item
    assert "local" in body["routing"]["backends"] and body["routing"]["routes"]["default"]
    assert any(s["guild_id"] == str(guild_id) for s in body["societies"])
    r = await client.patch(f"{BASE}/societies/{guild_id}", json={"revival_topics": ["the harvest", " the new bakery "]},
                           headers={**admin.headers, "X-Audit-Log-Reason": "fresh topics"})
    assert r.status_code == 200, r.text
    assert r.json()["revival_topics"] == ["the harvest", "the new bakery"]
    got = await agents.get_society(platform, soc["me"], guild_id)
    assert got["revival_topics"] == ["the harvest", "the new bakery"]
    r = await client.get("/api/v10/townsquare/security-log", params={"guild_id": guild_id, "action_type": 205}, headers=admin.headers)
    entry = r.json()["entries"][0]
    assert entry["reason"] == "fresh topics" and entry["changes"][0]["key"] == "revival_topics"
    assert_discord_error(await client.patch(f"{BASE}/societies/{2**40}", json={"revival_topics": []}, headers=admin.headers),
                         404, 10004)


async def test_config_masks_passwords_in_urls_that_are_not_secrets(platform: Platform, soc: dict[str, Any]) -> None:
    """CHROMA_URL, OLLAMA_HOST and S3_ENDPOINT are not secrets, but an operator may put a password in them."""
    urls = {"chroma_url": "http://reader:chroma-pw@chroma.internal:8000", "ollama_host": "http://llm:ollama-pw@ollama.internal:11434",
            "s3_endpoint": "https://minio:s3-pw@minio.internal:9000"}
    shown = await dashboard.configuration(replace(platform, settings=platform.settings.model_copy(update=urls)), soc["me"])
    by_name = {s["name"]: s["value"] for s in shown["settings"]}
    assert by_name["chroma_url"] == "http://reader:***@chroma.internal:8000"
    assert by_name["ollama_host"] == "http://llm:***@ollama.internal:11434"
    assert by_name["s3_endpoint"] == "https://minio:***@minio.internal:9000"
    assert "-pw" not in str(shown)  # the routing's backends too


async def test_administrators_only(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    human: Actor = soc["human"]
    g = soc["guild_id"]
    for path, params in (("/overview", {}), ("/agents", {}), ("/channels/activity", {"guild_id": g}), ("/logs", {}), ("/config", {})):
        assert_discord_error(await client.get(BASE + path, params=params, headers=human.headers), 403, 50013)
    assert_discord_error(await client.patch(f"{BASE}/societies/{g}", json={"revival_topics": ["x"]}, headers=human.headers), 403, 50013)
    assert_discord_error(await client.get(f"{BASE}/overview"), 401)


@pytest.mark.parametrize("path, params", [
    ("/overview", {"minutes": "0"}), ("/overview", {"minutes": "1e9"}), ("/overview", {"minutes": "99999"}),
    ("/overview", {"guild_id": "-1"}), ("/overview", {"guild_id": "abc"}), ("/overview", {"guild_id": str(2**80)}),
    ("/agents", {"guild_id": "1;DROP TABLE agents"}),
    ("/channels/activity", {}), ("/channels/activity", {"guild_id": "1", "minutes": "10080", "bucket_minutes": "1"}),
    ("/channels/activity", {"guild_id": "1", "bucket_minutes": "0"}), ("/channels/activity", {"guild_id": "1", "minutes": "NaN"}),
    ("/logs", {"level": "verbose"}), ("/logs", {"logger": "a b"}), ("/logs", {"logger": "x" * 200}),
    ("/logs", {"before": "not-an-id"}), ("/logs", {"before": "9" * 40}), ("/logs", {"before": "0-0"}), ("/logs", {"before": "000-00"}),
    ("/logs", {"since": "yesterday"}),
    ("/logs", {"since": "2026-01-01T00:00:00"}), ("/logs", {"until": "9999-12-31T23:59:59Z"}), ("/logs", {"limit": "0"}),
    ("/logs", {"limit": "100000"}), ("/logs", {"q": "a\x00b"}), ("/logs", {"q": "x" * 500}),
])
async def test_hostile_query_parameters_are_a_400(platform: Platform, client: httpx.AsyncClient, path: str,
                                                  params: dict[str, str]) -> None:
    admin = await person(platform, is_admin=True)
    assert_discord_error(await client.get(BASE + path, params=params, headers=admin.headers), 400)


async def test_hostile_bodies_are_a_400(platform: Platform, client: httpx.AsyncClient, soc: dict[str, Any]) -> None:
    admin, g = soc["admin"], soc["guild_id"]
    for body in ({"revival_topics": "not a list"}, {"revival_topics": [""]}, {"revival_topics": ["x" * 101]},
                 {"revival_topics": ["t"] * 51}, {"revival_topics": [1, {"a": 1}]}, {}, {"revival_topics": ["a\x00"]}):
        assert_discord_error(await client.patch(f"{BASE}/societies/{g}", json=body, headers=admin.headers), 400)
    r = await client.patch(f"{BASE}/societies/{g}", content=b"{nope", headers={**admin.headers, "Content-Type": "application/json"})
    assert_discord_error(r, 400, 50109)
    assert_discord_error(await client.get(f"{BASE}/overview", params={"guild_id": str(2**40)}, headers=admin.headers), 404, 10004)
