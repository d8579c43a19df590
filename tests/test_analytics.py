"""Analytics on constructed societies with known answers, through the real database: a fact
told and repeated by known agents (diffusion, activity, reply depth, reciprocity), a planted
loop, a hostile and a silent agent (alerts), a planted topic surge (topics rising), an idea
crossing communities (breakthroughs), the gate's rates; then the exports read back by pandas
(row counts equal to the database's) and networkx (the snapshot's nodes and weighted edges),
and the admin routes (zip streamed, errors in Discord's shape)."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import networkx as nx
import pandas as pd
import pytest
from sqlalchemy import insert, text

from townsquare.platform.actions import agents, graph as graph_actions, memories as memory_actions
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.analytics import export as exports
from townsquare.platform.analytics.scorecard import compute, parse_facts
from townsquare.platform.analytics.textstats import TextQuality
from townsquare.platform.analytics.message import Msg
from townsquare.platform.analytics.window import id_at, iso
from townsquare.platform.db.models import Message, Reaction, Relationship, Run

from .helpers import Actor, assert_discord_error, person
from .test_worker import channel_named, found

MINUTE = 60.0


class Script:
    """Messages written straight into the database at chosen times (snowflakes carry the time)."""

    def __init__(self, platform: Platform, guild_id: int, channel_id: int, t0: float) -> None:
        self.platform, self.guild_id, self.channel_id, self.t0 = platform, guild_id, channel_id, t0
        self.rows: list[dict[str, Any]] = []
        self.serial = 0

    def say(self, author: int, minute: float, content: str, *, answers: int | None = None, ref: int | None = None,
            mentions: list[int] | None = None, channel_id: int | None = None) -> int:
        self.serial += 1
        mid = id_at(self.t0 + minute * MINUTE) | self.serial
        self.rows.append({"id": mid, "channel_id": channel_id or self.channel_id, "guild_id": self.guild_id, "author_id": author,
                          "content": content, "nonce": f"ev{answers}" if answers else f"t{mid}", "referenced_message_id": ref,
                          "mentions": mentions or []})
        return mid

    async def commit(self) -> None:
        async with self.platform.transaction() as tx:
            await tx.conn.execute(insert(Message), self.rows)
        self.rows = []


async def society(platform: Platform, client: httpx.AsyncClient, minutes_ago: float = 60.0) -> dict[str, Any]:
    admin = await person(platform, is_admin=True)
    guild_id, cast = await found(platform, admin, size=5)
    general = await channel_named(client, admin, guild_id, "general")
    ids = [int(a["id"]) for a in cast]
    t0 = time.time() - minutes_ago * MINUTE
    me = await authenticate(platform, "Bearer", admin.token)
    return {"admin": admin, "me": me, "guild_id": guild_id, "cast": cast, "ids": ids, "general": general, "t0": t0,
            "script": Script(platform, guild_id, general, t0)}


async def two_communities(platform: Platform, guild_id: int, left: list[int], right: list[int]) -> dict[str, Any]:
    """Warm ties inside each group, one weak tie between them; then a snapshot of the graph."""
    rows = [{"guild_id": guild_id, "source_id": a, "target_id": b, "affinity": 0.7, "familiarity": 0.8, "trust": 0.7, "interactions": 20}
            for group in (left, right) for a in group for b in group if a != b]
    rows.append({"guild_id": guild_id, "source_id": left[0], "target_id": right[0], "affinity": 0.0, "familiarity": 0.05,
                 "trust": 0.5, "interactions": 1})
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Relationship), rows)
    return await graph_actions.take_snapshot(platform, guild_id, "manual")


FILLER = ["the weather looks grey over the hills this morning", "I planted beans along the north fence yesterday",
          "has anyone tried the new apple cider at the market", "the choir practice moved to Thursday evening",
          "my bicycle chain snapped on the way back from town", "there is a lovely smell of baking near the square",
          "the library got a box of old maps donated", "we should repaint the benches before summer",
          "the goats escaped again and ate half the hedge", "I found a fossil in the stream bed near the mill",
          "a heron was fishing by the pond at dawn", "who left a ladder against the church wall",
          "the post van came two hours late again", "tomorrow the school holds its spring fair",
          "someone painted the door of the forge bright blue", "there are new ducklings on the village green",
          "the quiz night raised enough for a new kettle", "old Mr Price fixed the clock on the tower",
          "the cheese stall sold out before ten", "fog rolled in from the marsh around supper"]


async def test_a_fact_told_and_repeated_by_known_agents(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await society(platform, client)
    a, b, c, d, e = s["ids"]
    sc: Script = s["script"]
    told = sc.say(a, 5, "Big news: the bakery on Mill Lane will close on Friday for good.")
    first = sc.say(b, 6, "Good morning everyone, lovely day for a walk by the river.")
    second = sc.say(c, 7, "A walk sounds perfect, I might join after lunch.", answers=first)
    third = sc.say(b, 8, "Then meet me at the old oak at two.", answers=second, ref=second)
    sc.say(c, 9, "Deal, see you there.", answers=third, mentions=[b])
    repeated_b = sc.say(b, 20, "Did you hear the bakery is closing on Friday? I can't believe it.")
    sc.say(d, 30, "Where will we get bread now, honestly?")
    repeated_c = sc.say(c, 40, "Ines told me the Mill Lane bakery shuts this friday.")
    sc.say(e, 50, "The hedges need trimming along the lane.")
    await sc.commit()
    since, until = id_at(s["t0"]), id_at(s["t0"] + 60 * MINUTE)

    card = await compute(platform, s["guild_id"], since, until, parse_facts(["bakery closing=bakery,friday"]), topic_sample=0)
    assert card["window"]["since_id"] == str(since) and card["window"]["minutes"] == 60.0
    act = card["activity"]
    assert act["messages"] == 9 and act["agent_messages"] == 9 and act["per_minute"] == round(9 / 60, 3)
    assert sum(p["messages"] for p in act["series"]) == 9
    assert {x["id"]: x["messages"] for x in act["by_author"]} == {str(a): 1, str(b): 3, str(c): 3, str(d): 1, str(e): 1}
    conv = card["conversation"]
    assert conv["reply_depth_max"] == 3 and conv["answering_messages"] == 3  # first -> second -> third -> "Deal"
    assert conv["reply_depth_mean"] == round((1 + 2 + 3) / 9, 3)
    assert conv["reciprocity"]["answered"] == {"pairs": 2, "reciprocated_pairs": 2, "reciprocity": 1.0}  # b<->c
    assert conv["reference_depth_max"] == 1 and conv["messages_with_mentions"] == 1

    (fact,) = card["diffusion"]
    assert fact["fact"] == "bakery closing" and fact["mentions"] == 3 and fact["informed"] == 3 and fact["agents_informed"] == 3
    assert [sp["id"] for sp in fact["speakers"]] == [str(a), str(b), str(c)]
    assert [sp["message_id"] for sp in fact["speakers"]] == [str(told), str(repeated_b), str(repeated_c)]
    assert fact["first"]["message_id"] == str(told) and fact["first"]["sim_seconds"] == 300.0  # the bucket of minute 5, speed 1
    curve = fact["curve"]
    informed_at = {round(p["sim_seconds"] / 60): p["informed"] for p in curve}
    assert informed_at[4] == 0 and informed_at[5] == 1 and informed_at[19] == 1 and informed_at[20] == 2 and informed_at[40] == 3
    assert curve[-1]["informed"] == 3 and all(x["informed"] <= y["informed"] for x, y in zip(curve, curve[1:]))
    # the linked messages read on their own
    assert card["messages"][str(told)]["excerpt"].startswith("Big news")
    assert card["topics"]["available"] is False  # topics off in this call

    # a narrower window: only what was said in it
    narrow = await compute(platform, s["guild_id"], id_at(s["t0"] + 15 * MINUTE), until, parse_facts(["bakery,friday"]), topic_sample=0)
    assert narrow["activity"]["messages"] == 4 and narrow["diffusion"][0]["informed"] == 2


async def test_a_planted_loop_a_hostile_agent_and_a_silent_one_raise_alerts(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await society(platform, client)
    a, b, c, d, e = s["ids"]
    sc: Script = s["script"]
    looped = [sc.say(d, 2 + i * 3, line) for i, line in enumerate([
        "I still think we should fix the fountain first.", "I still think we should fix the fountain first!",
        "I still think we should fix the fountain first, honestly.", "i still think we should fix the fountain first",
        "I still think we should fix the fountain first."])]
    hostile = [sc.say(e, 3 + i * 4, line) for i, line in enumerate([
        "This is a stupid and useless plan, I hate it.", "Ugh, what an awful, boring meeting.",
        "You are rude and wrong, as usual.", "Terrible idea, worst one yet."])]
    for i in range(16):
        sc.say((a, b)[i % 2], 1 + i * 3.5, FILLER[i % len(FILLER)] + f" ({i})")
    await sc.commit()
    # the gate's records in the window: 10 candidates, 2 in another's voice, 1 naming itself
    call = {"agent_id": d, "guild_id": s["guild_id"], "task": "reply", "backend": "local", "model": "m", "prompt_tokens": 5,
            "completion_tokens": 5, "latency_ms": 100, "fallback_step": 0, "error": None}  # every row has every key: one executemany
    await agents.record_llm_calls(platform, [{**call, "outcome": "ok"}] * 7 + [{**call, "outcome": "rejected", "error": "gate:wrong_voice"}] * 2
                                  + [{**call, "outcome": "rejected", "error": "gate:self_address"},
                                     {**call, "outcome": "error", "error": "timeout"}, {**call, "task": "rate", "outcome": "ok"}])

    card = await compute(platform, s["guild_id"], id_at(s["t0"]), None, topic_sample=0)
    by_kind = {(x["kind"], x["agent"]["id"]): x for x in card["alerts"]}
    loop = by_kind[("looping", str(d))]
    assert loop["detail"]["near_duplicates"] == 4 and loop["message_ids"] == [str(i) for i in looped[1:]]
    hostile_alert = by_kind[("hostile", str(e))]
    assert set(hostile_alert["message_ids"]) == {str(i) for i in hostile} and hostile_alert["detail"]["mean_sentiment"] <= -0.3
    assert ("silent", str(c)) in by_kind and ("silent", str(a)) not in by_kind
    assert not any(k == "looping" and who != str(d) for k, who in by_kind)  # fillers differ from each other
    assert not any(k == "hostile" and who != str(e) for k, who in by_kind)
    quality = card["text_quality"]
    assert quality["near_duplicates"] == 4 and quality["exact_duplicates"] == 3  # lines 2, 4, 5 are line 1 (normalised)
    assert quality["repeated_5gram"] == 4
    gate = card["gate"]
    assert gate["candidates"] == 10 and gate["wrong_voice_rate"] == 0.2 and gate["self_naming_rate"] == 0.1
    assert gate["by_reason"]["wrong_voice"] == 2 and gate["by_reason"]["loop"] == 0
    assert card["sentiment"]["by_author"][0]["id"] == str(e)  # the most negative first


async def test_a_planted_topic_surge_is_a_rising_topic(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await society(platform, client)
    ids = s["ids"]
    sc: Script = s["script"]
    calm = ["I baked sourdough bread this morning with rye flour", "the bread from the oven came out with a good crust",
            "my tomatoes and beans are growing well in the garden", "I need to weed the vegetable beds in the garden",
            "the choir sang three new songs at practice", "we practised a new song for the choir concert",
            "the football match on Saturday ended in a draw", "our team scored two goals in the football match"]
    for i in range(40):
        sc.say(ids[i % 5], i, calm[i % len(calm)] + f", day {i}")
    surge = ["the river flooded the old bridge last night", "water from the flood is over the bridge road",
             "the flood water is rising near the river bank", "the river burst its banks and flooded the meadow",
             "sandbags are needed at the bridge, the river keeps rising", "the flooded river closed the bridge to traffic"]
    for i in range(18):
        sc.say(ids[i % 5], 42 + i, surge[i % len(surge)] + f" ({i})")
    await sc.commit()
    card = await compute(platform, s["guild_id"], id_at(s["t0"]), id_at(s["t0"] + 60 * MINUTE), topic_sample=500)
    topics = card["topics"]
    assert topics["available"] and topics["sampled"] == 58
    rising = [t for t in topics["topics"] if t["rising"]]
    assert rising, topics
    flood = {"flood", "flooded", "river", "bridge", "water", "rising"}
    assert set(rising[0]["terms"]) & flood and topics["rising"][0]["id"] == rising[0]["id"]
    assert not any(set(t["terms"][:2]) & flood for t in topics["topics"] if not t["rising"])
    # its share is 0 before the surge and most of the sampled messages after it
    assert rising[0]["early_share"] == 0.0 and rising[0]["late_share"] > 0.5


async def test_an_idea_taken_up_across_communities_is_a_breakthrough(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await society(platform, client)
    a, b, c, d, e = s["ids"]
    await two_communities(platform, s["guild_id"], [a, b, c], [d, e])
    sc: Script = s["script"]
    for i in range(20):
        sc.say((a, b, c, d, e)[i % 5], 1 + i, FILLER[i % len(FILLER)] + f" ({i})")
    origin = sc.say(a, 25, "What if we built a solar kiln behind the pottery shed?")
    sc.say(b, 30, "A solar kiln could work in summer.")  # same community
    d_took = sc.say(d, 35, "I keep thinking about that solar kiln idea.")
    e_took = sc.say(e, 40, "Count me in for the solar kiln.")
    await sc.commit()
    card = await compute(platform, s["guild_id"], id_at(s["t0"]), None, topic_sample=0)
    groups = [{int(m["id"]) for m in c["members"]} for c in card["graph"]["communities"]]
    assert {a, b, c} in groups and {d, e} in groups and card["graph"]["source"] == "window"  # (the administrator is a third, alone)
    found_ = [x for x in card["breakthroughs"] if x["idea"] == "solar kiln"]
    assert found_, card["breakthroughs"]
    bt = found_[0]
    assert bt["origin"]["id"] == str(a) and bt["origin"]["message_id"] == str(origin)
    assert [x["id"] for x in bt["adopters"]] == [str(b), str(d), str(e)] and bt["communities"] == 2
    assert {str(d_took), str(e_took), str(origin)} <= set(bt["message_ids"])
    assert all(x["idea"] != "fossil stream" for x in card["breakthroughs"])  # said once: nobody took it up
    graph = card["graph"]
    assert {x["id"] for x in graph["influence"]} <= {str(i) for i in s["ids"]} and graph["brokers"][0]["id"] in (str(a), str(d))


def test_near_duplicates_agree_with_the_gates_similarity() -> None:
    """The fast path (rapidfuzz's bound first) finds exactly what `similarity` >= 0.8 finds."""
    import random

    from townsquare.agents.turn.text import similarity

    rng = random.Random(3)
    words = "the cat sat on a mat by harbour cafe coffee in town rain today bread market busy fountain".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(300)]
    quality = TextQuality(window=None, by_channel=False, ngram_window=None)
    expected = 0
    for i, line in enumerate(lines):
        quality.feed(Msg(i + 1, 0.0, 0, 1, 1, True, line))
        expected += any(similarity(line, other) >= 0.8 for other in lines[:i])
    assert quality.near == expected and expected > 10


async def _db_count(platform: Platform, sql: str, **params: Any) -> int:
    async with platform.read() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


async def test_exports_read_back_by_pandas_and_networkx(platform: Platform, client: httpx.AsyncClient, tmp_path: Path) -> None:
    s = await society(platform, client)
    a, b, c, d, e = s["ids"]
    g = s["guild_id"]
    snapshot = await two_communities(platform, g, [a, b, c], [d, e])
    sc: Script = s["script"]
    said = [sc.say(s["ids"][i % 5], 1 + i, FILLER[i % len(FILLER)] + f" — line {i}, with a comma") for i in range(30)]
    await sc.commit()
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Reaction), [{"message_id": said[i], "emoji": "👍", "user_id": s["ids"][(i + 1) % 5]} for i in range(7)])
    await memory_actions.add_memory(platform, s["me"], a, text="The fountain needs fixing.", kind="observation", importance=6.0,
                                    about=[], fact=None, confidence=None)
    call = {"agent_id": a, "guild_id": g, "task": "reply", "backend": "local", "model": "m", "prompt_tokens": 5, "completion_tokens": 5,
            "latency_ms": 100, "fallback_step": 0, "outcome": "ok"}
    await agents.record_llm_calls(platform, [call] * 4)
    since = id_at(s["t0"])

    manifest = await exports.export(platform, g, "parquet", tmp_path / "pq", since=since)
    until = int(manifest["window"]["until_id"])
    w = {"g": g, "lo": since, "hi": until}
    expected = {
        "messages": await _db_count(platform, "SELECT count(*) FROM messages WHERE guild_id = :g AND id >= :lo AND id < :hi", **w),
        "reactions": await _db_count(platform, "SELECT count(*) FROM reactions r JOIN messages m ON m.id = r.message_id "
                                               "WHERE m.guild_id = :g AND m.id >= :lo AND m.id < :hi", **w),
        "relationships": await _db_count(platform, "SELECT count(*) FROM relationships WHERE guild_id = :g", g=g),
        "llm_calls": await _db_count(platform, "SELECT count(*) FROM llm_calls WHERE guild_id = :g AND id >= :lo AND id < :hi", **w),
        "interventions": await _db_count(platform, "SELECT count(*) FROM audit_log WHERE guild_id = :g AND id >= :lo AND id < :hi", **w),
        "graph_nodes": len((await graph_actions.get_snapshot(platform, s["me"], int(snapshot["id"])))["nodes"]),
    }
    assert expected["messages"] == 30 and expected["reactions"] == 7 and expected["llm_calls"] == 4 and expected["interventions"] >= 1
    for name, rows in expected.items():
        frame = pd.read_parquet(tmp_path / "pq" / f"{name}.parquet")
        assert len(frame) == rows == manifest["files"][name]["rows"], name
    messages = pd.read_parquet(tmp_path / "pq" / "messages.parquet")
    assert messages["id"].dtype == "int64" and list(messages["id"]) == sorted(said)
    assert str(messages["created_at"].dt.tz) == "UTC" and messages["author_is_agent"].all()
    memories = pd.read_parquet(tmp_path / "pq" / "memories.parquet")
    assert len(memories) == 1 and memories.iloc[0]["agent_id"] == a and memories.iloc[0]["kind"] == "observation"
    assert memories.iloc[0]["importance"] == 6.0
    interventions = pd.read_parquet(tmp_path / "pq" / "interventions.parquet")
    assert "AGENT_MEMORY_ADD" in set(interventions["action"])
    series = pd.read_parquet(tmp_path / "pq" / "scorecard.parquet")
    assert series[series["metric"] == "messages"].query("key == 'all'")["value"].sum() == 30

    # CSV: the same counts, the text with its commas intact
    csv_manifest = await exports.export(platform, g, "csv", tmp_path / "csv", since=since, until=until)
    for name in ("messages", "reactions", "relationships", "llm_calls", "memories"):
        assert len(pd.read_csv(tmp_path / "csv" / f"{name}.csv")) == csv_manifest["files"][name]["rows"] == manifest["files"][name]["rows"]
    text_back = pd.read_csv(tmp_path / "csv" / "messages.csv")
    assert text_back["content"].iloc[0].endswith("line 0, with a comma")

    # the social graph: the snapshot's nodes and weighted edges
    stored = await graph_actions.get_snapshot(platform, s["me"], int(snapshot["id"]))
    want_nodes = {n["id"] for n in stored["nodes"]}
    want_edges = {(e_["source"], e_["target"]): e_["weight"] for e_ in stored["edges"]}
    for fmt, read in (("gexf", nx.read_gexf), ("graphml", nx.read_graphml)):
        await exports.export(platform, g, fmt, tmp_path / fmt, since=since)
        for path in (tmp_path / fmt / f"graph.{fmt}", tmp_path / fmt / f"graph-{snapshot['id']}.{fmt}"):
            got = read(str(path))
            assert got.is_directed() and set(got.nodes) == want_nodes
            assert {(u, v): pytest.approx(w) for u, v, w in got.edges(data="weight")} == want_edges
            assert got.nodes[str(a)]["label"] == next(n["name"] for n in stored["nodes"] if n["id"] == str(a))


async def twelve_lines(platform: Platform, client: httpx.AsyncClient) -> dict[str, Any]:
    """A society whose members said twelve filler lines, one a minute from its start (one about goats in the hedge)."""
    s = await society(platform, client)
    sc: Script = s["script"]
    for i in range(12):
        sc.say(s["ids"][i % 5], 1 + i, FILLER[i % len(FILLER)])
    await sc.commit()
    return s


async def test_scorecard_and_export_routes(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await twelve_lines(platform, client)
    admin: Actor = s["admin"]
    base = f"/api/v10/townsquare/societies/{s['guild_id']}"
    since = iso(s["t0"])
    r = await client.get(f"{base}/scorecard", params={"since": since, "fact": ["goats,hedge"]}, headers=admin.headers)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["activity"]["messages"] == 12 and card["diffusion"][0]["informed"] == 1
    r2 = await client.get(f"{base}/scorecard", params={"since": str(id_at(s["t0"])), "until": card["window"]["until_id"]},
                          headers=admin.headers)
    assert r2.json()["activity"]["messages"] == 12  # a snowflake works as well as a time

    async with client.stream("GET", f"{base}/export", params={"format": "csv", "since": since}, headers=admin.headers) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
        assert "attachment" in resp.headers["content-disposition"]
        body = b"".join([chunk async for chunk in resp.aiter_bytes()])
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert {f"{t}.csv" for t in exports.TABLES} | {"manifest.json"} == set(archive.namelist())
    assert len(pd.read_csv(archive.open("messages.csv"))) == 12
    r = await client.get(f"{base}/export", params={"format": "graphml"}, headers=admin.headers)
    assert r.status_code == 200 and "graph.graphml" in zipfile.ZipFile(io.BytesIO(r.content)).namelist()

    # bad input: 4xx in Discord's shape, never a 500
    for params in ({"since": "yesterday"}, {"since": "2026-01-01T10:00:00"}, {"since": "99999999999999999999"},
                   {"since": iso(time.time()), "until": since}, {"fact": [",,"]}, {"fact": ["a=" + ",".join("k" * 9)]}):
        assert_discord_error(await client.get(f"{base}/scorecard", params=params, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.get(f"{base}/export", params={"format": "xlsx"}, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.get("/api/v10/townsquare/societies/123/scorecard", headers=admin.headers), 404, 10004)
    outsider = await person(platform)
    assert_discord_error(await client.get(f"{base}/scorecard", headers=outsider.headers), 403, 50013)
    assert_discord_error(await client.get(f"{base}/export", headers=outsider.headers), 403, 50013)


RUN_SCENARIO = """\
name: goats
society: village
seed: 3
sim_speed: 60
duration: 2h
questions:
  - name: goats
    kind: knows
    fact: the goats got through the hedge
    keywords: [goats, hedge]
"""


async def test_a_run_gives_the_window_and_the_facts(platform: Platform, client: httpx.AsyncClient) -> None:
    s = await twelve_lines(platform, client)
    admin: Actor = s["admin"]
    run_id = id_at(s["t0"]) + 7  # a run started when the society's talk began (its id is its start)
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Run).values(id=run_id, batch_id=run_id, name="goats", scenario=RUN_SCENARIO, code_version="test",
                                                 seed=3, guild_id=s["guild_id"], state="done", ended_at=text("now()")))
    base = f"/api/v10/townsquare/societies/{s['guild_id']}"
    r = await client.get(f"{base}/scorecard", params={"run": str(run_id)}, headers=admin.headers)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["activity"]["messages"] == 12 and card["window"]["since_id"] == str(run_id)
    assert [(f["fact"], f["informed"]) for f in card["diffusion"]] == [("goats", 1)]  # the run's "who knows" question
    narrow = (await client.get(f"{base}/scorecard", params={"run": str(run_id), "until": iso(s["t0"] + 4.5 * MINUTE)},
                               headers=admin.headers)).json()
    assert narrow["activity"]["messages"] == 4  # a bound given wins over the run's
    # a run of another society, or none at all, is not found; a malformed one is a 400
    other = await society(platform, client)
    assert_discord_error(await client.get(f"/api/v10/townsquare/societies/{other['guild_id']}/scorecard", params={"run": str(run_id)},
                                          headers=other["admin"].headers), 404, 10110)
    assert_discord_error(await client.get(f"{base}/report", params={"run": "123"}, headers=admin.headers), 404, 10110)
    assert_discord_error(await client.get(f"{base}/scorecard", params={"run": "x1"}, headers=admin.headers), 400, 50035)


async def test_the_scorecard_page_in_a_browser(platform: Platform, client: httpx.AsyncClient, browser: object, server: Any) -> None:
    """The dashboard's scorecard: plots drawn by our own SVG code, alerts and breakthroughs that
    link to their messages, an export downloaded; nothing beyond loopback, no console error."""
    from .browser import close_web, open_web

    s = await society(platform, client, minutes_ago=30)
    a, b, c, d, e = s["ids"]
    await two_communities(platform, s["guild_id"], [a, b, c], [d, e])
    sc: Script = s["script"]
    looped = [sc.say(d, 2 + i, "I still think we should fix the fountain first.") for i in range(5)]
    for i in range(16):
        sc.say((a, b)[i % 2], 1 + i, FILLER[i])
    origin = sc.say(a, 18, "What if we built a solar kiln behind the pottery shed?")
    sc.say(d, 20, "I keep thinking about that solar kiln idea.")
    sc.say(e, 22, "Count me in for the solar kiln.")
    await sc.commit()

    web = await open_web(browser, server.url)
    try:
        page = web.page
        await page.goto("/login?lang=en")  # type: ignore[attr-defined]
        await page.evaluate("t => localStorage.setItem('ts_token', t)", s["admin"].token)  # type: ignore[attr-defined]
        await page.goto(f"/admin/scorecard?guild={s['guild_id']}&lang=en")  # type: ignore[attr-defined]
        await page.locator("#society-select").wait_for()  # type: ignore[attr-defined]
        options = await page.locator("#society-select option").evaluate_all("els => els.map(e => e.value)")  # type: ignore[attr-defined]
        assert str(s["guild_id"]) in options, options
        assert await page.locator("#society-select").input_value() == str(s["guild_id"])  # type: ignore[attr-defined]
        await page.get_by_text("Computed at").wait_for()  # type: ignore[attr-defined]  the first scorecard, without facts
        await page.locator("#sc-facts").fill("bakery,friday; kiln=solar,kiln")  # type: ignore[attr-defined]
        await page.get_by_role("button", name="Compute").click()  # type: ignore[attr-defined]
        await page.locator("figure.chart figcaption", has_text="Diffusion of “kiln”").wait_for()  # type: ignore[attr-defined]
        captions = await page.locator("figure.chart figcaption").all_inner_texts()  # type: ignore[attr-defined]
        assert {"Messages per minute", "Sentiment over time", "Diffusion of “bakery + friday”"} <= set(captions), captions
        loop = page.locator(f"li.sc-alert[data-kind='looping'][data-agent-id='{d}']")  # type: ignore[attr-defined]
        await loop.wait_for()
        await loop.locator("summary").click()
        links = loop.locator("a.message-link")
        assert await links.count() == 4
        assert await links.first.get_attribute("href") == f"/app/{s['guild_id']}/{s['general']}/{looped[1]}"
        breakthrough = page.locator("li.sc-breakthrough", has_text="solar kiln")  # type: ignore[attr-defined]
        await breakthrough.wait_for()
        assert await breakthrough.locator(f"a[data-message-id='{origin}']").count() == 1
        await web.shot("admin-scorecard")
        async with page.expect_download() as info:  # type: ignore[attr-defined]
            await page.get_by_role("button", name="Download GEXF").click()  # type: ignore[attr-defined]
        download = await info.value
        assert download.suggested_filename.endswith("-gexf.zip")
        assert zipfile.ZipFile(await download.path()).namelist()[-1] == "manifest.json"
        assert web.console_errors == []
    finally:
        await close_web(web)


async def test_the_report_in_a_browser_and_on_paper(platform: Platform, client: httpx.AsyncClient, browser: object, server: Any) -> None:
    """The HTML report: self-contained (inline SVG plots, no script), the notable moments with their
    words; opened in Chromium it requests nothing beyond loopback and logs no error; it prints to PDF.
    Then a batch's report, likewise."""
    from .browser import ARTIFACTS, close_web, open_web

    s = await society(platform, client, minutes_ago=30)
    a, b, c, d, e = s["ids"]
    await two_communities(platform, s["guild_id"], [a, b, c], [d, e])
    sc: Script = s["script"]
    for i in range(16):
        sc.say(s["ids"][i % 5], 1 + i, FILLER[i])
    told = sc.say(a, 18, "What if we built a solar kiln behind the pottery shed?")
    sc.say(d, 20, "I keep thinking about that solar kiln idea.")
    sc.say(e, 22, "Count me in for the solar kiln.")
    await sc.commit()
    url = f"/api/v10/townsquare/societies/{s['guild_id']}/report"
    r = await client.get(url, params={"since": iso(s["t0"]), "fact": ["kiln=solar,kiln"], "download": "true"}, headers=s["admin"].headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"] and "attachment" in r.headers["content-disposition"]
    assert "<script" not in r.text and "Solar kiln" not in r.text and "“solar kiln”" in r.text and "What if we built a solar kiln" in r.text
    assert_discord_error(await client.get(url, params={"until": "nope"}, headers=s["admin"].headers), 400, 50035)

    web = await open_web(browser, server.url)
    try:
        await web.context.set_extra_http_headers(s["admin"].headers)  # type: ignore[attr-defined]
        page = web.page
        await page.goto(f"{url}?since={iso(s['t0'])}&fact=kiln%3Dsolar%2Ckiln")  # type: ignore[attr-defined]
        await page.get_by_role("heading", name="Notable moments").wait_for()  # type: ignore[attr-defined]
        assert await page.locator("svg.chart[role=img]").count() >= 3  # type: ignore[attr-defined]  activity, sentiment, the fact
        assert await page.get_by_text(f"(message {told})").count() >= 1  # type: ignore[attr-defined]
        await web.shot("analytics-report")
        await page.emulate_media(media="print")  # type: ignore[attr-defined]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pdf = await page.pdf(path=str(ARTIFACTS / "analytics-report.pdf"))  # type: ignore[attr-defined]
        assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
        # a batch's report: the arms' dots and every run's diffusion drawn under the same policy, nothing blocked
        batch = await recorded_batch(platform)
        await web.context.set_extra_http_headers(batch["admin"].headers)  # type: ignore[attr-defined]
        await page.goto(f"/api/v10/townsquare/runs/batches/{batch['batch_id']}/report")  # type: ignore[attr-defined]
        await page.get_by_role("heading", name="Each run's answers").wait_for()  # type: ignore[attr-defined]
        assert await page.locator("svg.chart[role=img]").count() == 3  # type: ignore[attr-defined]  two questions, one fact
        assert await page.locator("svg.chart circle").count() == 8 + 4  # type: ignore[attr-defined]  a dot per run and question; each run's end
        await web.shot("analytics-batch-report")
        assert web.console_errors == []
    finally:
        await close_web(web)


def commands(settings: Any, services: Any) -> Any:
    """`cli(*args)`: a `townsquare` command in a subprocess against the session's installation: (exit code, stdout, stderr)."""
    import asyncio
    import os
    import sys

    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "TOWNSQUARE_LOG_LEVEL": "WARNING",
           "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
           "TOWNSQUARE_DATA_DIR": str(settings.data_dir), "CHROMA_URL": settings.chroma_url or "", "TOWNSQUARE_ANALYTICS_TOPIC_SAMPLE": "0"}

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "townsquare.platform.cli", *args, env=env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
        return proc.returncode or 0, out.decode(), err.decode()

    return cli


async def test_the_export_and_report_commands(platform: Platform, client: httpx.AsyncClient, settings: Any, services: Any,
                                              tmp_path: Path) -> None:
    """`townsquare export` and `townsquare report` in subprocesses against the session's installation."""
    s = await society(platform, client)
    sc: Script = s["script"]
    for i in range(9):
        sc.say(s["ids"][i % 5], 1 + i, FILLER[i])
    await sc.commit()
    cli = commands(settings, services)
    code, out, err = await cli("export", "--guild", str(s["guild_id"]), "--since", iso(s["t0"]), "--format", "csv",
                               "--out", str(tmp_path / "csv"))
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "csv" / "messages.csv")) == 9 and "messages.csv  9" in out
    code, out, err = await cli("export", "--guild", str(s["guild_id"]), "--format", "graphml", "--out", str(tmp_path / "g"))
    assert code == 0, err
    assert set(nx.read_graphml(str(tmp_path / "g" / "graph.graphml")).nodes) >= {str(i) for i in s["ids"]}
    code, out, err = await cli("report", "--guild", str(s["guild_id"]), "--since", iso(s["t0"]), "--out", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "<svg" in (tmp_path / "r.html").read_text() and "Notable moments" in (tmp_path / "r.html").read_text()
    code, out, err = await cli("export", "--guild", str(s["guild_id"]), "--since", "soon", "--format", "csv", "--out", str(tmp_path / "x"))
    assert code == 1 and "since" in err
    code, out, err = await cli("report", "--run", "123", "--out", str(tmp_path / "none.html"))
    assert code == 1 and "Unknown Run" in err and not (tmp_path / "none.html").exists()
    code, out, err = await cli("report", "--out", str(tmp_path / "none.html"))
    assert code == 1 and "--guild" in err


# --- a batch of runs: an A/B comparison's arms side by side ---

BATCH_SCENARIO = RUN_SCENARIO.replace("sim_speed: 60", "sim_speed: 600") + """\
  - name: mood
    kind: sentiment
    topic: goats
"""
# (arm, repeat) -> (goats, mood, how many members say the goats got through the hedge), in the order `townsquare run` runs them
BATCH = {("A", 0): (0.6, 0.1, 2), ("B", 0): (0.2, -0.2, 1), ("A", 1): (0.8, 0.3, 3), ("B", 1): (0.3, 0.0, 1)}


async def recorded_batch(platform: Platform) -> dict[str, Any]:
    """Two arms × two repeats recorded through the action layer as `townsquare run` records them,
    each run a fresh society whose members speak during the run; then a B run that failed early."""
    from sqlalchemy import select

    from townsquare.platform.actions import runs
    from townsquare.platform.core.snowflake import new_id
    from townsquare.platform.db.models import Channel

    admin = await person(platform, is_admin=True)
    batch_id = new_id()
    ids: dict[tuple[str, int], int] = {}
    for (arm, repeat), (goats, mood, tellers) in BATCH.items():
        run_id = await runs.start_run(platform, batch_id=batch_id, name="goats", arm=arm, repeat=repeat, scenario=BATCH_SCENARIO,
                                      model="test-model", seed=3 + repeat, created_by=admin.id)
        guild_id, cast = await found(platform, admin, size=4)
        await runs.set_guild(platform, run_id, guild_id)
        members = [int(a["id"]) for a in cast]
        async with platform.read() as conn:
            channel_id = (await conn.execute(select(Channel.id).where(Channel.guild_id == guild_id).limit(1))).scalar_one()
        lines = [(members[i], "The goats got through the hedge again!") for i in range(tellers)] + [(members[-1], FILLER[0])]
        async with platform.transaction() as tx:  # said during the run: after its start, before its end
            await tx.conn.execute(insert(Message), [{"id": new_id(), "channel_id": channel_id, "guild_id": guild_id, "author_id": a,
                                                     "content": c, "nonce": None, "mentions": []} for a, c in lines])
        answers = [{"name": "goats", "kind": "knows", "value": goats, "informed": tellers, "agents": 4, "who": [], "told": [], "said": []},
                   {"name": "mood", "kind": "sentiment", "value": mood, "messages": len(lines)}]
        await runs.end_run(platform, run_id, "done", results={"questions": answers, "interventions": []})
        ids[arm, repeat] = run_id
    failed = await runs.start_run(platform, batch_id=batch_id, name="goats", arm="B", repeat=2, scenario=BATCH_SCENARIO,
                                  model="test-model", seed=5, created_by=admin.id)
    await runs.end_run(platform, failed, "failed", error="RuntimeError: the agent worker did not start")
    return {"admin": admin, "batch_id": batch_id, "runs": ids, "failed": failed}


def check_batch_report(html: str, batch: dict[str, Any]) -> None:
    """The numbers chosen in BATCH, as the report must show them."""
    from townsquare.agents.scenario.stats import difference

    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    goats = difference([0.6, 0.8], [0.2, 0.3], seed=3)  # seeded by the first run's seed, as the command's summary
    assert "<td>A</td><td class=\"num\">0.700</td><td class=\"num\">0.141</td><td class=\"num\">0.600</td><td class=\"num\">0.800</td>" in html
    assert "<td>B</td><td class=\"num\">0.250</td>" in html and "<td>B</td><td class=\"num\">-0.100</td>" in html  # goats, mood
    assert f"A - B: 0.450</b>, 95% interval [{goats['low']:.3f}, {goats['high']:.3f}]" in html and "A - B: 0.300</b>" in html
    assert "bootstrap (2000 resamples)" in html
    assert "<title>A #2: 0.800</title>" in html and "<title>B #1: -0.200</title>" in html  # every run a dot
    assert html.count('<td class="num">2</td></tr>') >= 4  # n = 2 per arm and question: the failed run is not counted
    # diffusion: every run's curve on one chart, the legend naming arm and repeat, the last point its members informed
    chart = html[html.index("Members informed of “goats”"):html.index("<h2>Runs</h2>")]
    assert all(f"</svg>{label}</span>" in chart for label in ("A #1", "A #2", "B #1", "B #2"))
    assert "A #2: 3 informed" in chart and "B #1: 1 informed" in chart and chart.count("<path") == 4
    # the runs and their answers, the failed one with its reason
    assert str(batch["runs"]["A", 0]) in html and "test-model" in html and "the agent worker did not start" in html
    assert "no society" in html and "(3/4 informed)" in html


async def test_a_batchs_arms_side_by_side(platform: Platform, client: httpx.AsyncClient, settings: Any, services: Any,
                                          tmp_path: Path) -> None:
    """A batch's report (`GET .../runs/batches/{id}/report`, `townsquare report --batch`): each
    question's arms with the difference and its interval, every run's diffusion, the runs."""
    from townsquare.platform.api.routes.analytics import REPORT_CSP

    batch = await recorded_batch(platform)
    admin: Actor = batch["admin"]
    url = f"/api/v10/townsquare/runs/batches/{batch['batch_id']}/report"
    r = await client.get(url, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html") and r.headers["content-security-policy"] == REPORT_CSP
    assert r.headers["cache-control"] == "no-store" and "content-disposition" not in r.headers
    check_batch_report(r.text, batch)
    r = await client.get(url, params={"download": "true"}, headers=admin.headers)
    assert f'filename="townsquare-batch-{batch["batch_id"]}-report.html"' in r.headers["content-disposition"]

    assert_discord_error(await client.get(url, headers=(await person(platform)).headers), 403, 50013)
    assert_discord_error(await client.get("/api/v10/townsquare/runs/batches/123/report", headers=admin.headers), 404, 10111)
    for bad in ("x1", "-1", "99999999999999999999"):
        assert_discord_error(await client.get(f"/api/v10/townsquare/runs/batches/{bad}/report", headers=admin.headers), 400, 50035)

    cli = commands(settings, services)
    code, out, err = await cli("report", "--batch", str(batch["batch_id"]), "--out", str(tmp_path / "batch.html"))
    assert code == 0, err
    check_batch_report((tmp_path / "batch.html").read_text(), batch)
    code, out, err = await cli("report", "--batch", str(batch["batch_id"]), "--run", str(batch["runs"]["A", 0]), "--out", str(tmp_path / "x.html"))
    assert code == 2 and "--batch" in err and "--run" in err and "not both" in err and not (tmp_path / "x.html").exists()
    code, out, err = await cli("report", "--batch", "123", "--out", str(tmp_path / "none.html"))
    assert code == 1 and "Unknown Batch" in err and not (tmp_path / "none.html").exists()
