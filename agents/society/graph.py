"""The society's social graph: who deals with whom, how warmly, and what follows from it.

Pure (no I/O): the platform hands in the members, the `relationships` rows and the reactions
each member received, and gets back JSON-ready nodes, edges and metrics (the shape the API
serves and `graph_snapshots` stores; ids are strings, Discord style).

Edge weight (directed, source -> target, in [0, 1]):

    contact = familiarity                                     how much they deal with each other
              (1 - exp(-interactions / 10) for a tie recorded without it)
    warmth  = (1 + affinity) / 2                              0 = dislike .. 1 = liking
    weight  = contact * (0.25 + 0.75 * warmth)

so a tie needs contact to exist at all, liking strengthens it, and a hostile tie keeps a quarter
of its contact (people who quarrel still belong to the same circle). Contact is familiarity, the
relationship's own weighted measure (agents/mind/relations.py: a reply, mention or private
message adds three times what an emoji reaction adds), not the raw count of interactions, in
which a reaction from anyone who merely shares a busy channel counts as much as a conversation.
Ties below 0.01 are left out. Communities come from Louvain on the undirected projection
(w(a,b) + w(b,a)); influence is weighted PageRank scaled by the node count (1.0 = average);
betweenness uses 1/weight as the distance (strong ties are short). Reputation mixes reactions received (log-scaled against the
society's most reacted-to member) with the mean peer rating, shrunk toward the neutral 3 so one
rating does not decide it. The layout is a seeded spring layout warm-started from the previous
snapshot's positions, so the dashboard's timeline moves only where the society changed.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

SEED = 7
SPRING_MAX = 500  # tied members beyond which the layout is a circle (networkx's large-graph layout needs scipy)
INTERACTION_SCALE = 10.0  # interactions at which contact reaches 63% (ties without familiarity only)
HOSTILE_FLOOR = 0.25  # share of a tie's weight left when affinity is -1
MIN_WEIGHT = 0.01
RATING_PRIOR = 2.0  # phantom neutral ratings every member starts with
BETWEENNESS_SAMPLES = 64  # above this many nodes betweenness is estimated from a seeded sample
LAYOUT_ITERATIONS = 50


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    bot: bool = False
    agent: bool = False


@dataclass(frozen=True)
class Tie:
    """One `relationships` row: how `source` gets on with `target`."""

    source: int
    target: int
    affinity: float = 0.0
    familiarity: float = 0.0
    trust: float = 0.5
    interactions: int = 0
    rating: float | None = None


@dataclass
class Previous:
    """What a snapshot keeps from the one before it: positions and community labels."""

    positions: dict[int, tuple[float, float]] = field(default_factory=dict)
    communities: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_graph(cls, graph: Mapping[str, Any] | None) -> "Previous":
        """From a stored snapshot's `graph` (the JSON this module produced)."""
        prev = cls()
        for node in (graph or {}).get("nodes", []):
            node_id = int(node["id"])
            if node.get("x") is not None and node.get("y") is not None:
                prev.positions[node_id] = (float(node["x"]), float(node["y"]))
            if node.get("community") is not None:
                prev.communities[node_id] = int(node["community"])
        return prev


@dataclass
class Snapshot:
    graph: dict[str, Any]  # {"nodes": [...], "edges": [...]}
    metrics: dict[str, Any]  # the society-wide summary


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, float(value)))


def edge_weight(tie: Tie) -> float:
    familiarity = _clamp(tie.familiarity, 0, 1)
    # the count only stands in where no familiarity was recorded (ties imported with counts alone)
    contact = familiarity if familiarity > 0 else 1 - math.exp(-max(tie.interactions, 0) / INTERACTION_SCALE)
    warmth = (1 + _clamp(tie.affinity, -1, 1)) / 2
    return contact * (HOSTILE_FLOOR + (1 - HOSTILE_FLOOR) * warmth)


def build_graph(members: Sequence[Member], ties: Sequence[Tie]) -> nx.DiGraph:
    """Every member is a node; ties between two members with some weight are edges (ties of
    people who left the guild, self-ties and ties without contact are left out)."""
    graph = nx.DiGraph()
    for m in members:
        graph.add_node(m.id, name=m.name, bot=m.bot, agent=m.agent)
    for t in ties:
        if t.source == t.target or t.source not in graph or t.target not in graph:
            continue
        weight = edge_weight(t)
        if weight < MIN_WEIGHT:
            continue
        graph.add_edge(t.source, t.target, weight=weight, distance=1.0 / weight, affinity=_clamp(t.affinity, -1, 1),
                       familiarity=_clamp(t.familiarity, 0, 1), trust=_clamp(t.trust, 0, 1), interactions=max(t.interactions, 0))
    return graph


def undirected(graph: nx.DiGraph) -> nx.Graph:
    """The projection communities, clustering and the layout work on: w(a,b) + w(b,a)."""
    out = nx.Graph()
    out.add_nodes_from(graph.nodes)
    for u, v, w in graph.edges(data="weight"):
        if out.has_edge(u, v):
            out[u][v]["weight"] += w
        else:
            out.add_edge(u, v, weight=w)
    return out


def pagerank(graph: nx.DiGraph, alpha: float = 0.85, tol: float = 1e-10, max_iter: int = 200) -> dict[int, float]:
    """Weighted PageRank by power iteration over the edge list (networkx's own needs scipy; a
    dense matrix would grow with the square of a large guild's members). Dangling nodes spread
    their rank evenly, as in networkx."""
    nodes = list(graph)
    n = len(nodes)
    if n == 0:
        return {}
    index = {v: i for i, v in enumerate(nodes)}
    edges = [(index[u], index[v], float(w)) for u, v, w in graph.edges(data="weight")]
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    weight = np.array([e[2] for e in edges], dtype=float)
    out = np.zeros(n)
    np.add.at(out, src, weight)
    dangling = out == 0
    share = weight / out[src] if len(edges) else weight
    rank = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        flow = np.zeros(n)
        np.add.at(flow, dst, rank[src] * share)
        new = alpha * (flow + rank[dangling].sum() / n) + (1 - alpha) / n
        done = np.abs(new - rank).sum() < n * tol
        rank = new
        if done:
            break
    return {v: float(rank[i]) for v, i in index.items()}


def communities(projection: nx.Graph, previous: Mapping[int, int] | None = None, seed: int = SEED) -> dict[int, int]:
    """Louvain communities as node -> label. Labels carry over from the previous snapshot (each
    community, largest first, takes the old label most of its members had), so colours stay put."""
    if projection.number_of_nodes() == 0:
        return {}
    # integer weights: with equal float weights (0.36875 ...) networkx's Louvain can move nodes
    # back and forth forever on rounding error; on integers its gains compare exactly
    whole = nx.Graph()
    whole.add_nodes_from(projection)
    whole.add_edges_from((u, v, {"weight": max(1, round(w * 1000))}) for u, v, w in projection.edges(data="weight"))
    found = nx.community.louvain_communities(whole, weight="weight", seed=seed)
    found = sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))
    previous = previous or {}
    labels: dict[int, int] = {}
    taken: set[int] = set()
    unmatched: list[list[int]] = []
    for members in found:
        votes: dict[int, int] = defaultdict(int)
        for node in members:
            if node in previous and previous[node] not in taken:
                votes[previous[node]] += 1
        if votes:
            label = max(votes, key=lambda k: (votes[k], -k))
            taken.add(label)
            labels.update((node, label) for node in members)
        else:
            unmatched.append(members)
    fresh = (i for i in range(len(found) + len(taken) + 1) if i not in taken)
    for members in unmatched:
        label = next(fresh)
        labels.update((node, label) for node in members)
    return labels


def reputation(members: Sequence[Member], ties: Sequence[Tie], reactions: Mapping[int, int]) -> dict[int, dict[str, Any]]:
    """Per member: reputation in [0, 1] = half reactions received (log-scaled against the most
    reacted-to member), half mean peer rating (1..5 -> 0..1, shrunk toward 3)."""
    ids = {m.id for m in members}
    ratings: dict[int, list[float]] = defaultdict(list)
    for t in ties:
        if t.rating is not None and t.source != t.target and t.source in ids:
            ratings[t.target].append(_clamp(t.rating, 1, 5))
    most = max((max(reactions.get(i, 0), 0) for i in ids), default=0)
    out: dict[int, dict[str, Any]] = {}
    for m in members:
        received = max(reactions.get(m.id, 0), 0)
        reacted = math.log1p(received) / math.log1p(most) if most else 0.0
        given = ratings.get(m.id, [])
        shrunk = (sum(given) + 3.0 * RATING_PRIOR) / (len(given) + RATING_PRIOR)
        out[m.id] = {"reputation": 0.5 * reacted + 0.5 * (shrunk - 1) / 4, "reactions_received": received,
                     "ratings": len(given), "rating_mean": sum(given) / len(given) if given else None}
    return out


def layout(projection: nx.Graph, previous: Mapping[int, tuple[float, float]] | None = None, seed: int = SEED,
           iterations: int = LAYOUT_ITERATIONS) -> dict[int, tuple[float, float]]:
    """Spring layout in [-1, 1]. Known nodes start where they were; a newcomer starts beside the
    known neighbours it is tied to (or at a seeded random spot), so only the change moves."""
    nodes = list(projection)
    if not nodes:
        return {}
    if len(nodes) == 1:
        return {nodes[0]: (0.0, 0.0)}
    previous = previous or {}
    init = None
    if any(n in previous for n in nodes):
        rng = random.Random(seed)
        init = {}
        # spring_layout works in the unit square; stored positions are in [-1, 1]
        for n in nodes:
            if n in previous:
                init[n] = ((previous[n][0] + 1) / 2, (previous[n][1] + 1) / 2)
        for n in nodes:
            if n in init:
                continue
            near = [init[m] for m in projection[n] if m in init]
            if near:
                cx, cy = sum(p[0] for p in near) / len(near), sum(p[1] for p in near) / len(near)
                init[n] = (cx + rng.uniform(-0.05, 0.05), cy + rng.uniform(-0.05, 0.05))
            else:
                init[n] = (rng.random(), rng.random())
    tied = [n for n in nodes if projection.degree(n) > 0]
    if len(tied) >= SPRING_MAX:
        # networkx's spring layout for 500+ nodes needs scipy, which is not installed: a circle
        # ordered by neighbourhood (breadth-first) keeps tied members near each other
        order = [n for component in nx.connected_components(projection) for n in nx.bfs_tree(projection, min(component))]
        pos = {n: (float(np.cos(2 * np.pi * i / len(order))), float(np.sin(2 * np.pi * i / len(order)))) for i, n in enumerate(order)}
    else:
        sub = projection.subgraph(tied)
        # In the unit square (the loners' ring below is drawn around its centre), with twice networkx's
        # default spacing so that a close-knit group does not collapse into one blot of labels.
        pos = nx.spring_layout(sub, pos={n: init[n] for n in tied} if init else None, weight="weight", seed=seed,
                               iterations=iterations, k=2 / np.sqrt(len(tied)), center=(0.5, 0.5), scale=0.5,
                               ) if len(tied) > 1 else {n: (0.5, 0.5) for n in tied}
        loners = [n for n in nodes if n not in pos]  # members with no ties yet: a ring around the society
        for i, n in enumerate(loners):
            angle = 2 * np.pi * i / max(1, len(loners))
            pos[n] = (0.5 + 0.75 * float(np.cos(angle)), 0.5 + 0.75 * float(np.sin(angle)))
    coords = np.array([pos[n] for n in nodes], dtype=float)
    coords -= coords.mean(axis=0)
    span = float(np.abs(coords).max())
    if span > 0:
        coords /= span
    return {n: (float(coords[i][0]), float(coords[i][1])) for i, n in enumerate(nodes)}


def reciprocity(graph: nx.DiGraph) -> tuple[float, float]:
    """(share of edges returned, share of weight returned: sum of min(w_ab, w_ba) over the total)."""
    edges = graph.number_of_edges()
    if edges == 0:
        return 0.0, 0.0
    total = sum(w for _, _, w in graph.edges(data="weight"))
    mutual = sum(min(w, graph[v][u]["weight"]) for u, v, w in graph.edges(data="weight") if graph.has_edge(v, u))
    return nx.reciprocity(graph), mutual / total if total else 0.0


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def analyse(members: Sequence[Member], ties: Sequence[Tie], reactions: Mapping[int, int],
            previous: Previous | None = None, *, seed: int = SEED) -> Snapshot:
    """The whole picture: nodes (with layout and per-node metrics), edges and the summary."""
    previous = previous or Previous()
    graph = build_graph(members, ties)
    projection = undirected(graph)
    n = graph.number_of_nodes()
    labels = communities(projection, previous.communities, seed)
    rank = pagerank(graph)
    sample = None if n <= BETWEENNESS_SAMPLES else BETWEENNESS_SAMPLES
    between = nx.betweenness_centrality(graph, k=sample, weight="distance", normalized=True, seed=seed) if n > 2 else {v: 0.0 for v in graph}
    clustering = nx.clustering(projection) if n else {}
    rep = reputation(members, ties, reactions)
    pos = layout(projection, previous.positions, seed)

    nodes = []
    for m in members:
        if m.id not in graph:
            continue
        x, y = pos[m.id]
        nodes.append({
            "id": str(m.id), "name": m.name, "bot": m.bot, "agent": m.agent, "community": labels[m.id],
            "influence": _round(rank[m.id] * n), "betweenness": _round(between.get(m.id, 0.0)),
            "in_degree": graph.in_degree(m.id), "out_degree": graph.out_degree(m.id),
            "in_strength": _round(graph.in_degree(m.id, weight="weight")), "out_strength": _round(graph.out_degree(m.id, weight="weight")),
            "clustering": _round(clustering.get(m.id, 0.0)), "reputation": _round(rep[m.id]["reputation"]),
            "reactions_received": rep[m.id]["reactions_received"], "ratings": rep[m.id]["ratings"],
            "rating_mean": _round(rep[m.id]["rating_mean"], 3), "x": _round(x), "y": _round(y),
        })
    edges = [{"source": str(u), "target": str(v), "weight": _round(d["weight"]), "affinity": _round(d["affinity"], 3),
              "familiarity": _round(d["familiarity"], 3), "trust": _round(d["trust"], 3), "interactions": d["interactions"],
              "reciprocated": graph.has_edge(v, u)}
             for u, v, d in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))]

    groups: dict[int, list[int]] = defaultdict(list)
    for node, label in labels.items():
        groups[label].append(node)
    community_list = [{"id": label, "size": len(ids), "members": [str(i) for i in sorted(ids)]}
                      for label, ids in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))]
    partition = [set(ids) for ids in groups.values()]
    modularity = nx.community.modularity(projection, partition, weight="weight") if projection.number_of_edges() else 0.0
    mutual, mutual_weight = reciprocity(graph)
    by = lambda key: [node["id"] for node in sorted(nodes, key=lambda nd: (-nd[key], nd["id"]))[:5]]  # noqa: E731
    metrics = {
        "nodes": n, "edges": graph.number_of_edges(), "agents": sum(1 for m in members if m.agent and m.id in graph),
        "humans": sum(1 for m in members if not m.bot and m.id in graph),
        "density": _round(nx.density(graph)), "reciprocity": _round(mutual), "reciprocity_weighted": _round(mutual_weight),
        "clustering": _round(nx.average_clustering(projection) if n else 0.0),
        "communities": community_list, "community_count": len(community_list), "modularity": _round(modularity),
        "mean_affinity": _round(float(np.mean([d["affinity"] for *_, d in graph.edges(data=True)])) if edges else None),
        "mean_trust": _round(float(np.mean([d["trust"] for *_, d in graph.edges(data=True)])) if edges else None),
        "top_influence": by("influence"), "top_reputation": by("reputation"),
    }
    return Snapshot(graph={"nodes": nodes, "edges": edges}, metrics=metrics)
