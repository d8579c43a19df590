"""The social graph: the pure analysis on constructed interaction patterns, then the dashboard's
API against the real server, PostgreSQL, Redis and an rq worker process."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import networkx as nx
import pytest
from sqlalchemy import insert, text

from townsquare.agents.mind.relations import Relations
from townsquare.agents.society.graph import Member, Previous, Tie, analyse, build_graph, edge_weight, pagerank
from townsquare.platform.actions import agents, graph as graph_actions
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.core.config import Settings
from townsquare.platform.db.models import Relationship

from .helpers import World, assert_discord_error, name, person
from .test_agents_api import PERSONA

# --- the pure analysis ---


def _clusters(count: int, size: int, start: int = 1) -> tuple[list[Member], list[Tie], list[set[int]]]:
    """`count` groups whose members all talk warmly with each other, each joined to the next by
    one weak, lukewarm tie."""
    members = [Member(i, f"m{i}", bot=i % 2 == 0, agent=i % 2 == 0) for i in range(start, start + count * size)]
    groups = [set(range(start + c * size, start + (c + 1) * size)) for c in range(count)]
    ties = [Tie(a, b, affinity=0.6, familiarity=0.7, trust=0.7, interactions=25) for g in groups for a in g for b in g if a != b]
    ties += [Tie(min(groups[c]), min(groups[c + 1]), affinity=0.0, familiarity=0.05, interactions=1) for c in range(count - 1)]
    return members, ties, groups


def _positions(snapshot: Any) -> dict[str, tuple[float, float]]:
    return {n["id"]: (n["x"], n["y"]) for n in snapshot.graph["nodes"]}


def _mean_move(a: dict[str, tuple[float, float]], b: dict[str, tuple[float, float]]) -> float:
    return sum(math.dist(a[k], b[k]) for k in a) / len(a)


def test_louvain_finds_dense_clusters_joined_by_weak_edges() -> None:
    members, ties, groups = _clusters(3, 6)
    snap = analyse(members, ties, {})
    found = [set(int(i) for i in c["members"]) for c in snap.metrics["communities"]]
    assert sorted(found, key=min) == groups
    assert snap.metrics["community_count"] == 3 and snap.metrics["modularity"] > 0.5
    by_id = {int(n["id"]): n for n in snap.graph["nodes"]}
    assert all(len({by_id[i]["community"] for i in g}) == 1 for g in groups)
    # the bridges carry the shortest paths between groups
    bridge = max(by_id.values(), key=lambda n: n["betweenness"])
    assert int(bridge["id"]) in {min(g) for g in groups}
    # deterministic: the same society gives the same picture
    assert analyse(members, ties, {}).graph == snap.graph


def test_community_labels_carry_over_between_snapshots() -> None:
    members, ties, groups = _clusters(2, 5)
    previous = Previous(communities={**{i: 7 for i in groups[0]}, **{i: 3 for i in groups[1]}})
    snap = analyse(members, ties, {}, previous)
    labels = {int(n["id"]): n["community"] for n in snap.graph["nodes"]}
    assert {labels[i] for i in groups[0]} == {7} and {labels[i] for i in groups[1]} == {3}


def test_reciprocity_density_clustering_on_a_known_graph() -> None:
    members = [Member(i, f"m{i}") for i in (1, 2, 3, 4)]
    same = {"affinity": 0.5, "familiarity": 0.5, "interactions": 5}
    ties = [Tie(1, 2, **same), Tie(2, 1, **same), Tie(2, 3, **same), Tie(3, 1, **same)]
    snap = analyse(members, ties, {})
    m = snap.metrics
    assert m["nodes"] == 4 and m["edges"] == 4
    assert m["reciprocity"] == 0.5  # 2 of the 4 edges are returned
    assert m["reciprocity_weighted"] == 0.5
    assert m["density"] == round(4 / 12, 4)
    assert m["clustering"] == 0.75  # a triangle (1, 2, 3) and a loner
    g = build_graph(members, ties)
    assert m["reciprocity"] == round(nx.reciprocity(g), 4) and m["density"] == round(nx.density(g), 4)
    lone = next(n for n in snap.graph["nodes"] if n["id"] == "4")
    assert lone["in_degree"] == lone["out_degree"] == 0 and lone["clustering"] == 0


def test_edge_weight_needs_contact_and_grows_with_liking() -> None:
    assert edge_weight(Tie(1, 2)) == 0
    friendly = edge_weight(Tie(1, 2, affinity=0.8, familiarity=0.5))
    hostile = edge_weight(Tie(1, 2, affinity=-0.8, familiarity=0.5))
    assert 0 < hostile < friendly <= 1
    assert edge_weight(Tie(1, 2, interactions=30)) > edge_weight(Tie(1, 2, interactions=3)) > 0
    # no contact, self-ties and ties of people who left the guild are not edges
    g = build_graph([Member(1, "a"), Member(2, "b")], [Tie(1, 2), Tie(1, 1, familiarity=1), Tie(1, 9, familiarity=1)])
    assert g.number_of_edges() == 0 and set(g) == {1, 2}



def test_conversation_outweighs_reactions_of_channel_mates() -> None:
    """Contact is familiarity, which a reply, mention or DM grows three times as fast as a
    reaction: a pair that talked ten times is a stronger tie than a pair of channel-mates who
    reacted to each other ten times, although both counted ten interactions."""
    relations = Relations()
    for i in range(10):
        relations.addressed(1, 2, 0.0, float(i), guild_id=9)  # replies / mentions / DMs
        relations.reacted(1, 3, "👍", float(i), guild_id=9)  # emoji between channel-mates
    ties = [Tie(s, t, b.affinity, b.familiarity, b.trust, b.interactions) for (s, t), b in relations.bonds.items()]
    weight = {(t.source, t.target): edge_weight(t) for t in ties}
    assert relations.get(1, 2).interactions == relations.get(1, 3).interactions == 10
    assert weight[(1, 2)] > 2 * weight[(1, 3)] and weight[(2, 1)] > 2 * weight[(3, 1)]
    # a count alone (a tie imported without familiarity) still makes a tie
    assert edge_weight(Tie(1, 2, familiarity=0.0, interactions=10)) > 0

def test_reputation_orders_by_reactions_and_ratings() -> None:
    members = [Member(i, f"m{i}") for i in range(1, 7)]
    ties = [Tie(r, 1, familiarity=0.5, rating=5) for r in (4, 5, 6)] + [Tie(r, 2, familiarity=0.5, rating=3) for r in (4, 5)]
    ties += [Tie(4, 3, familiarity=0.5, rating=1), Tie(5, 3, familiarity=0.5, rating=2)]
    snap = analyse(members, ties, {1: 40, 2: 5, 3: 0, 4: 5})
    rep = {int(n["id"]): n for n in snap.graph["nodes"]}
    assert rep[1]["reputation"] > rep[2]["reputation"] > rep[3]["reputation"]
    assert rep[1]["rating_mean"] == 5 and rep[1]["ratings"] == 3 and rep[1]["reactions_received"] == 40
    assert rep[2]["reputation"] == rep[4]["reputation"]  # ratings of 3 are neutral: as good as none
    assert snap.metrics["top_reputation"][0] == "1"
    # one glowing rating weighs less than three (shrunk toward neutral)
    one = analyse(members, [Tie(4, 5, rating=5)] + ties, {})
    by = {int(n["id"]): n["reputation"] for n in one.graph["nodes"]}
    assert by[1] > by[5] > by[6]


def test_influence_is_weighted_pagerank() -> None:
    members = [Member(i, f"m{i}") for i in range(1, 8)]
    ties = [Tie(i, 1, affinity=0.5, familiarity=0.6, interactions=10) for i in range(2, 8)] + [Tie(1, 2, familiarity=0.2)]
    snap = analyse(members, ties, {})
    influence = {n["id"]: n["influence"] for n in snap.graph["nodes"]}
    assert snap.metrics["top_influence"][:2] == ["1", "2"]
    assert math.isclose(sum(influence.values()), 7, abs_tol=0.01)  # scaled: 1.0 is average
    g = build_graph(members, ties)
    # networkx's public pagerank needs scipy, which the project does not ship: its pure-Python one is the reference
    from networkx.algorithms.link_analysis import pagerank_alg

    reference = getattr(pagerank_alg, "_pagerank_python", nx.pagerank)(g, weight="weight", max_iter=1000)
    ours = pagerank(g)
    assert all(math.isclose(ours[v], reference[v], abs_tol=1e-4) for v in g)


def test_layout_is_normalised_and_stable_across_warm_starts() -> None:
    members, ties, groups = _clusters(2, 6)
    first = analyse(members, ties, {})
    pos = _positions(first)
    assert all(-1 <= x <= 1 and -1 <= y <= 1 for x, y in pos.values())
    assert max(max(abs(x), abs(y)) for x, y in pos.values()) == pytest.approx(1, abs=1e-3)
    # the same society, warm-started from the snapshot before, barely moves...
    again = analyse(members, ties, {}, Previous.from_graph(first.graph))
    warm = _mean_move(pos, _positions(again))
    # ...whereas an unrelated layout of it (another seed) lands somewhere else entirely
    cold = _mean_move(pos, _positions(analyse(members, ties, {}, seed=1234)))
    assert warm < 0.25 and warm < cold / 3, (warm, cold)
    # a newcomer tied to the first group appears beside it
    newcomer = Member(99, "new")
    more = ties + [Tie(99, i, affinity=0.5, familiarity=0.6, interactions=10) for i in groups[0]]
    later = _positions(analyse([*members, newcomer], more, {}, Previous.from_graph(again.graph)))
    centre = [sum(later[str(i)][k] for i in g) / len(g) for g in groups for k in (0, 1)]
    assert math.dist(later["99"], centre[:2]) < math.dist(later["99"], centre[2:])
    assert _mean_move({k: v for k, v in later.items() if k != "99"}, _positions(again)) < 0.35


def test_empty_and_tiny_societies() -> None:
    empty = analyse([], [], {})
    assert empty.graph == {"nodes": [], "edges": []} and empty.metrics["nodes"] == 0 and empty.metrics["density"] == 0
    one = analyse([Member(1, "solo")], [], {})
    assert one.graph["nodes"][0]["x"] == 0 and one.metrics["community_count"] == 1
    two = analyse([Member(1, "a"), Member(2, "b")], [Tie(1, 2, familiarity=1)], {1: 3})
    assert two.metrics["reciprocity"] == 0 and two.metrics["edges"] == 1


# --- the API, on the real stack ---


async def _admin(world: World) -> Any:
    return await person(world.platform, is_admin=True)


async def _relate(platform: Platform, guild_id: int, ties: list[tuple[int, int, dict[str, Any]]]) -> None:
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Relationship), [{"guild_id": guild_id, "source_id": s, "target_id": t, "trust": 0.5, "rating": None, **v}
                                                     for s, t, v in ties])


async def _society(world: World, admin: Any) -> dict[str, Any]:
    """Two circles: (owner, alice, bob) and (bot, an agent, carol), one weak tie between them;
    alice's message gets reactions; bob rates alice."""
    me = await authenticate(world.platform, "Bearer", admin.token)
    agent = await agents.do_create_agent(world.platform, me, world.guild_id, agents.check_persona({**PERSONA, "name": name("Gr")}))
    carol = await person(world.platform)
    from townsquare.platform.actions import guilds

    async with world.platform.transaction() as tx:
        await guilds.add_member(tx, world.guild_id, carol.id)
    warm = {"affinity": 0.7, "familiarity": 0.8, "trust": 0.7, "interactions": 30}
    left = [world.owner.id, world.alice.id, world.bob.id]
    right = [world.bot.id, int(agent["id"]), carol.id]
    ties = [(a, b, dict(warm)) for g in (left, right) for a in g for b in g if a != b]
    ties.append((world.alice.id, world.bot.id, {"affinity": 0.0, "familiarity": 0.05, "interactions": 1}))
    for s, t, v in ties:
        if (s, t) == (world.bob.id, world.alice.id):
            v["rating"] = 5.0
    await _relate(world.platform, world.guild_id, ties)
    msg = await world.send(world.alice, "the market opens at nine")
    for actor in (world.bob, world.owner, world.alice):  # alice's own reaction does not count
        r = await world.client.put(f"/api/v10/channels/{world.general_id}/messages/{msg['id']}/reactions/%F0%9F%91%8D/@me",
                                   headers=actor.headers)
        assert r.status_code == 204, r.text
    return {"left": {str(i) for i in left}, "right": {str(i) for i in right}, "agent": agent, "carol": carol}


def _rq_burst(settings: Settings, services: Any) -> subprocess.CompletedProcess[str]:
    """A real rq worker process in burst mode; it finds the services through its environment, as under `up`."""
    from townsquare.worker.runtime.run import queue_name

    env = {**os.environ, "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_DATA_DIR": str(settings.data_dir),
           "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
    return subprocess.run([sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", services.redis_url, queue_name(settings)],
                          env=env, capture_output=True, text=True, timeout=180)


async def test_graph_api_live_snapshots_history_and_member(world: World, settings: Settings, services: Any) -> None:
    admin = await _admin(world)
    society = await _society(world, admin)
    client, h, gid = world.client, admin.headers, world.guild_id

    r = await client.get(f"/api/v10/townsquare/graph?guild_id={gid}", headers=h)
    assert r.status_code == 200, r.text
    live = r.json()
    assert live["id"] is None and live["reason"] == "live" and live["guild_id"] == str(gid)
    nodes = {n["id"]: n for n in live["nodes"]}
    assert set(nodes) == society["left"] | society["right"]
    assert nodes[society["agent"]["id"]]["agent"] is True and nodes[society["agent"]["id"]]["name"] == society["agent"]["name"]
    assert nodes[str(world.alice.id)]["bot"] is False and nodes[str(world.bot.id)]["bot"] is True
    assert all(-1 <= n["x"] <= 1 and -1 <= n["y"] <= 1 for n in nodes.values())
    # the two circles are two communities
    assert {nodes[i]["community"] for i in society["left"]} != {nodes[i]["community"] for i in society["right"]}
    assert len({nodes[i]["community"] for i in society["left"]}) == 1 and len({nodes[i]["community"] for i in society["right"]}) == 1
    assert live["metrics"]["community_count"] == 2
    alice = nodes[str(world.alice.id)]
    assert alice["reactions_received"] == 2 and alice["rating_mean"] == 5
    assert alice["reputation"] == max(n["reputation"] for n in nodes.values())
    edge = next(e for e in live["edges"] if e["source"] == str(world.alice.id) and e["target"] == str(world.bob.id))
    assert edge["affinity"] == 0.7 and edge["familiarity"] == 0.8 and edge["trust"] == 0.7 and 0 < edge["weight"] <= 1

    # an on-demand snapshot goes through rq
    r = await client.post("/api/v10/townsquare/graph/snapshots", json={"guild_id": str(gid)}, headers=h)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert r.json()["status"] == "queued" and r.headers["location"].endswith(job_id)
    done = _rq_burst(settings, services)
    assert done.returncode == 0, done.stderr
    r = await client.get(f"/api/v10/townsquare/graph/snapshots/jobs/{job_id}", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "finished", (r.text, done.stderr[-2000:])
    [snapshot_id] = r.json()["snapshot_ids"]

    history = (await client.get(f"/api/v10/townsquare/graph/snapshots?guild_id={gid}", headers=h)).json()
    assert [s["id"] for s in history] == [snapshot_id]
    assert history[0]["reason"] == "manual" and history[0]["metrics"]["community_count"] == 2
    assert history[0]["metrics"]["community_sizes"] == [3, 3] and "communities" not in history[0]["metrics"]
    full = (await client.get(f"/api/v10/townsquare/graph/snapshots/{snapshot_id}", headers=h)).json()
    assert full["id"] == snapshot_id and {n["id"] for n in full["nodes"]} == set(nodes) and len(full["edges"]) == len(live["edges"])
    assert len(full["metrics"]["communities"]) == 2

    # a scheduled one later: the layout warm-starts from the manual one, the history grows
    async with world.platform.transaction() as tx:
        await tx.conn.execute(text("UPDATE relationships SET interactions = interactions + 5 WHERE guild_id = :g"), {"g": gid})
    second = await graph_actions.take_snapshot(world.platform, gid, "schedule")
    history = (await client.get(f"/api/v10/townsquare/graph/snapshots?guild_id={gid}", headers=h)).json()
    assert [s["id"] for s in history] == [second["id"], snapshot_id]
    paged = (await client.get(f"/api/v10/townsquare/graph/snapshots?guild_id={gid}&before={second['id']}&limit=1", headers=h)).json()
    assert [s["id"] for s in paged] == [snapshot_id]
    later = (await client.get(f"/api/v10/townsquare/graph/snapshots/{second['id']}", headers=h)).json()
    moved = _mean_move({n["id"]: (n["x"], n["y"]) for n in full["nodes"]}, {n["id"]: (n["x"], n["y"]) for n in later["nodes"]})
    assert moved < 0.3, moved
    assert {n["id"]: n["community"] for n in later["nodes"]} == {n["id"]: n["community"] for n in full["nodes"]}

    r = await client.get(f"/api/v10/townsquare/graph/members/{world.alice.id}?guild_id={gid}", headers=h)
    assert r.status_code == 200, r.text
    member = r.json()
    assert member["user_id"] == str(world.alice.id) and member["current"]["reactions_received"] == 2
    assert {e["target"] for e in member["ties_out"]} == {str(world.owner.id), str(world.bob.id), str(world.bot.id)}
    assert {e["source"] for e in member["ties_in"]} == {str(world.owner.id), str(world.bob.id)}
    assert [h_["snapshot_id"] for h_ in member["history"]] == [second["id"], snapshot_id]
    assert member["history"][0]["community"] == alice["community"] and member["history"][0]["reputation"] is not None
    one = (await client.get(f"/api/v10/townsquare/graph/members/{world.alice.id}?guild_id={gid}&limit=1", headers=h)).json()
    assert len(one["history"]) == 1


async def test_graph_api_refuses_non_admins_and_bad_input(world: World) -> None:
    admin = await _admin(world)
    gid, client = world.guild_id, world.client
    snap = await graph_actions.take_snapshot(world.platform, gid, "manual")
    paths = [("GET", f"/api/v10/townsquare/graph?guild_id={gid}", None),
             ("GET", f"/api/v10/townsquare/graph/snapshots?guild_id={gid}", None),
             ("GET", f"/api/v10/townsquare/graph/snapshots/{snap['id']}", None),
             ("POST", "/api/v10/townsquare/graph/snapshots", {"guild_id": str(gid)}),
             ("GET", f"/api/v10/townsquare/graph/members/{world.alice.id}?guild_id={gid}", None)]
    for method, path, body in paths:
        assert_discord_error(await client.request(method, path, json=body, headers=world.owner.headers), 403, 50013)  # owner, not admin
        assert_discord_error(await client.request(method, path, json=body), 401)
    h = admin.headers
    for path in ["/api/v10/townsquare/graph", "/api/v10/townsquare/graph?guild_id=abc", "/api/v10/townsquare/graph?guild_id=-1",
                 f"/api/v10/townsquare/graph?guild_id={2**80}", "/api/v10/townsquare/graph/snapshots",
                 f"/api/v10/townsquare/graph/snapshots?guild_id={gid}&limit=0", f"/api/v10/townsquare/graph/snapshots?guild_id={gid}&limit=500",
                 f"/api/v10/townsquare/graph/snapshots?guild_id={gid}&before=x", "/api/v10/townsquare/graph/snapshots/abc",
                 "/api/v10/townsquare/graph/snapshots/1e999", f"/api/v10/townsquare/graph/members/{world.alice.id}",
                 f"/api/v10/townsquare/graph/members/x?guild_id={gid}", "/api/v10/townsquare/graph/snapshots/jobs/not%20a%20job"]:
        assert_discord_error(await client.get(path, headers=h), 400)
    for body in [{}, {"guild_id": "x"}, {"guild_id": -4}, [1], {"guild_id": str(2**70)}]:
        assert_discord_error(await client.post("/api/v10/townsquare/graph/snapshots", json=body, headers=h), 400)
    r = await client.post("/api/v10/townsquare/graph/snapshots", content=b"{bad json", headers={**h, "Content-Type": "application/json"})
    assert_discord_error(r, 400)
    assert_discord_error(await client.get("/api/v10/townsquare/graph?guild_id=1", headers=h), 404, 10004)
    assert_discord_error(await client.get("/api/v10/townsquare/graph/snapshots?guild_id=1", headers=h), 404, 10004)
    assert_discord_error(await client.post("/api/v10/townsquare/graph/snapshots", json={"guild_id": "1"}, headers=h), 404, 10004)
    assert_discord_error(await client.get("/api/v10/townsquare/graph/snapshots/123", headers=h), 404, 10102)
    assert_discord_error(await client.get("/api/v10/townsquare/graph/snapshots/jobs/0123abcd", headers=h), 404, 10103)
    outsider = await person(world.platform)
    assert_discord_error(await client.get(f"/api/v10/townsquare/graph/members/{outsider.id}?guild_id={gid}", headers=h), 404, 10007)
    # a society nobody has related in yet is a graph of lone members, not an error
    r = await client.get(f"/api/v10/townsquare/graph?guild_id={gid}", headers=h)
    assert r.status_code == 200 and r.json()["metrics"]["edges"] == 0 and len(r.json()["nodes"]) == 4


async def test_prune_keeps_the_timeline_bounded(world: World) -> None:
    ids = [(await graph_actions.take_snapshot(world.platform, world.guild_id, "schedule"))["id"] for _ in range(4)]
    async with world.platform.transaction() as tx:
        await tx.conn.execute(text("UPDATE graph_snapshots SET created_at = now() - interval '40 days' WHERE id = :i"), {"i": int(ids[0])})
    pruned = await graph_actions.prune_snapshots(world.platform, keep_days=30, keep_max=2)
    assert pruned >= 2  # (other tests' guilds may hold more than two too)
    async with world.platform.read() as conn:
        left = (await conn.execute(text("SELECT id FROM graph_snapshots WHERE guild_id = :g ORDER BY id"), {"g": world.guild_id})).scalars().all()
    assert [str(i) for i in left] == ids[2:]


async def test_scheduled_snapshots_cover_every_society(world: World) -> None:
    from townsquare.platform.db.models import Society

    async with world.platform.transaction() as tx:
        await tx.conn.execute(insert(Society).values(guild_id=world.guild_id, name=name("soc")))
    taken = await graph_actions.take_snapshots(world.platform, None, "schedule")
    mine = [s for s in taken if s["guild_id"] == str(world.guild_id)]
    assert len(mine) == 1 and mine[0]["reason"] == "schedule" and mine[0]["metrics"]["nodes"] == 4
    with pytest.raises(ValueError):
        await graph_actions.take_snapshot(world.platform, world.guild_id, "whenever")


def test_large_guilds_with_equal_ties_are_analysed() -> None:
    """600 members (beyond networkx's scipy-only layout) whose ties all weigh the same (a float
    on which networkx's Louvain could oscillate forever): analysed, every member placed."""
    import random as _random

    from townsquare.agents.society.graph import Member as M, Tie as T, analyse as run

    rng = _random.Random(1)
    members = [M(i, f"m{i}") for i in range(600)]
    ties = [T(a, b, 0.3, 0.5, 0.5, 5) for a, b in ((rng.randrange(600), rng.randrange(600)) for _ in range(300)) if a != b]
    snapshot = run(members, ties, {})
    assert len(snapshot.graph["nodes"]) == 600 and snapshot.metrics["community_count"] >= 1
    assert all(-1.0 <= n["x"] <= 1.0 and -1.0 <= n["y"] <= 1.0 for n in snapshot.graph["nodes"])
