"""Social-graph benchmark: the time one snapshot's analysis takes for a society of 25 and 200.

    .venv/bin/python bench/graph.py [--sizes 25,200] [--repeat 5] [--ties-per-member 12]

Builds a society from a fixed seed: circles of about 8 members who know each other well, plus
--ties-per-member ties each in all (the rest to random members, weaker, some hostile), ratings
on a third of the ties and reactions for everyone; then times `analyse` (graph, Louvain,
PageRank, betweenness, clustering, reputation, layout) cold (no previous snapshot) and warm
(layout and labels from the previous one), as the rq job runs it. Reading the rows and writing
the snapshot row are a few queries and are not counted. The LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import orjson

from townsquare.agents.society.graph import Member, Previous, Tie, analyse


def society(n: int, ties_per_member: int, seed: int) -> tuple[list[Member], list[Tie], dict[int, int]]:
    rng = random.Random(seed)
    members = [Member(i, f"m{i}", bot=i % 5 != 0, agent=i % 5 != 0) for i in range(1, n + 1)]
    circle = {m.id: (m.id - 1) // 8 for m in members}
    ties: list[Tie] = []
    for m in members:
        mates = [o.id for o in members if o.id != m.id and circle[o.id] == circle[m.id]]
        others = rng.sample([o.id for o in members if o.id != m.id and circle[o.id] != circle[m.id]],
                            max(0, min(n - 1 - len(mates), ties_per_member - len(mates))))
        for target in mates:
            ties.append(Tie(m.id, target, affinity=rng.uniform(0.2, 0.9), familiarity=rng.uniform(0.5, 1), trust=rng.random(),
                            interactions=rng.randint(10, 80), rating=rng.choice([None, None, 4.0, 5.0])))
        for target in others:
            ties.append(Tie(m.id, target, affinity=rng.uniform(-0.8, 0.5), familiarity=rng.uniform(0, 0.4), trust=rng.random(),
                            interactions=rng.randint(0, 8), rating=rng.choice([None, None, 2.0, 3.0])))
    return members, ties, {m.id: rng.randint(0, 60) for m in members}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="25,200")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ties-per-member", type=int, default=12)
    args = parser.parse_args()
    results = {}
    for n in (int(s) for s in args.sizes.split(",")):
        members, ties, reactions = society(n, args.ties_per_member, seed=n)
        cold, warm = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            first = analyse(members, ties, reactions)
            t1 = time.perf_counter()
            analyse(members, ties, reactions, Previous.from_graph(first.graph))
            t2 = time.perf_counter()
            cold.append(t1 - t0)
            warm.append(t2 - t1)
        size = len(orjson.dumps(first.graph)) + len(orjson.dumps(first.metrics))
        results[str(n)] = {"nodes": n, "ties": len(ties), "edges": first.metrics["edges"],
                           "communities": first.metrics["community_count"], "cold_ms": round(statistics.median(cold) * 1000, 1),
                           "warm_ms": round(statistics.median(warm) * 1000, 1), "snapshot_bytes": size}
        print(f"{n} members, {len(ties)} ties: cold {results[str(n)]['cold_ms']} ms, warm {results[str(n)]['warm_ms']} ms, "
              f"{first.metrics['community_count']} communities, {size} bytes of JSON")
    print(json.dumps({"benchmark": "graph", "repeat": args.repeat, "results": results}))


if __name__ == "__main__":
    main()
