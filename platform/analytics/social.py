"""The social graph over the window: communities and how well they hold, influence (PageRank)
and brokers (betweenness), from the graph snapshots (agents/society/graph.py computed them;
nothing is recomputed here).

The snapshots taken inside the window give the communities over time; stability between two
snapshots is, for each community of the later one, its best Jaccard overlap with a community
of the earlier one, averaged (1.0: the same groups). The last snapshot of the window (or, when
none was taken in it, the last one before its end; or, when the society has none yet, the
graph computed now) gives the top members by influence and by betweenness."""

from __future__ import annotations

from typing import Any

import orjson

from .source import Reader
from .window import Window, seconds_of

TOP = 5


def stability(before: list[list[Any]], after: list[list[Any]]) -> dict[str, Any]:
    """How much the groups held: for each community now, its best Jaccard overlap with one before."""
    if not before or not after:
        return {"mean_best_jaccard": None}
    best = [max(len(set(a) & set(b)) / len(set(a) | set(b)) for b in before) for a in after]
    return {"mean_best_jaccard": round(sum(best) / len(best), 3), "per_community": [round(v, 2) for v in best]}


def _groups(metrics: dict[str, Any]) -> list[list[str]]:
    return [list(c.get("members", [])) for c in metrics.get("communities", [])]


def summarise(graph: dict[str, Any], metrics: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    nodes = graph.get("nodes", [])

    def top(key: str) -> list[dict[str, Any]]:
        ranked = sorted(nodes, key=lambda n: (-(n.get(key) or 0.0), n["id"]))[:TOP]
        return [{"id": n["id"], "name": n.get("name") or names.get(int(n["id"]), n["id"]), "value": n.get(key),
                 "community": n.get("community")} for n in ranked]

    return {"nodes": metrics.get("nodes", len(nodes)), "edges": metrics.get("edges"), "density": metrics.get("density"),
            "modularity": metrics.get("modularity"), "reciprocity": metrics.get("reciprocity"),
            "community_count": metrics.get("community_count"),
            "communities": [{"id": c["id"], "size": c["size"], "members": [{"id": m, "name": names.get(int(m), m)} for m in c["members"]]}
                            for c in metrics.get("communities", [])],
            "influence": top("influence"), "brokers": top("betweenness")}


async def social(reader: Reader, window: Window, names: dict[int, str], live: Any = None) -> tuple[dict[str, Any], dict[int, int]]:
    """The graph section of the scorecard, and each member's community (for the breakthroughs).
    `live` is an async callable giving the graph now (a Snapshot), used when no snapshot exists."""
    timeline: list[dict[str, Any]] = []
    previous: list[list[str]] | None = None
    last: tuple[int, dict[str, Any], dict[str, Any]] | None = None
    async for rows in reader.batches(
            "SELECT id, reason, graph, metrics FROM graph_snapshots WHERE guild_id = $1 AND id >= $2 AND id < $3 ORDER BY id",
            window.guild_id, window.since_id, window.until_id):
        for r in rows:
            metrics = _json(r["metrics"])
            groups = _groups(metrics)
            held = stability(previous, groups)["mean_best_jaccard"] if previous is not None else None
            timeline.append({"snapshot_id": str(r["id"]), "t": _iso(r["id"]), "sim_seconds": window.sim_seconds(seconds_of(r["id"])),
                             "communities": len(groups), "modularity": metrics.get("modularity"), "stability": held})
            previous = groups
            last = (r["id"], r["graph"], metrics)
    source = "window"
    if last is None:
        row = await reader.driver.fetchrow(
            "SELECT id, graph, metrics FROM graph_snapshots WHERE guild_id = $1 AND id < $2 ORDER BY id DESC LIMIT 1",
            window.guild_id, window.until_id)
        if row is not None:
            last, source = (row["id"], row["graph"], _json(row["metrics"])), "before"
    if last is not None:
        graph = _json(last[1])
        metrics = last[2]
        snapshot_id: str | None = str(last[0])
    elif live is not None:
        snap = await live()
        graph, metrics, snapshot_id, source = snap.graph, snap.metrics, None, "live"
    else:
        return {"source": None, "snapshots": 0, "timeline": []}, {}
    held = [t["stability"] for t in timeline if t["stability"] is not None]
    out = {"source": source, "snapshot_id": snapshot_id, "snapshots": len(timeline), "timeline": timeline,
           "stability": {"mean_best_jaccard": round(sum(held) / len(held), 3) if held else None,
                         "min_best_jaccard": min(held) if held else None},
           **summarise(graph, metrics, names)}
    communities = {int(n["id"]): int(n["community"]) for n in graph.get("nodes", []) if n.get("community") is not None}
    return out, communities


def _json(value: Any) -> Any:
    """JSONB as the driver hands it: decoded already (SQLAlchemy's codec) or as text."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _iso(snowflake: int) -> str:
    from .window import iso

    return iso(seconds_of(snowflake))
