"""How a planted fact spreads through speech: a curve over (simulated) time.

A fact is named by keywords; a message mentions it when it contains every keyword as a word
(case-insensitive; a keyword may be a phrase, and `harbour*` matches words starting so). Per
time bucket: the mentions, the members who mentioned it by then (cumulative, the "informed"
curve of Generative Agents' party experiment, measured on what is said rather than on memory),
and who said it first. Each point also carries simulated seconds since the window's start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .message import Msg
from .window import Window

MAX_FACTS = 10
MAX_KEYWORDS = 8
LINKED = 20  # message ids kept per fact: the first mentions (each adopter's first)


@dataclass(frozen=True)
class Fact:
    label: str
    keywords: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> "Fact":
        """`party,harbour` or `label=party,harbour`."""
        label, _, words = spec.partition("=") if "=" in spec else ("", "", spec)
        keywords = tuple(k.strip().lower() for k in words.split(",") if k.strip())
        return cls(label.strip() or " + ".join(keywords), keywords)

    def pattern(self) -> list[re.Pattern[str]]:
        out = []
        for k in self.keywords:
            stem = k.endswith("*")
            body = r"\s+".join(re.escape(w) for w in k.rstrip("*").split())
            out.append(re.compile(rf"(?<![\w]){body}" + (r"" if stem else r"(?![\w])"), re.IGNORECASE))
        return out


class Diffusion:
    def __init__(self, window: Window, facts: list[Fact], agents: dict[int, str], names: dict[int, str]) -> None:
        self.window, self.facts, self.agents, self.names = window, facts, agents, names
        self.patterns = [f.pattern() for f in facts]
        self.mentions = [[0] * window.buckets for _ in facts]
        self.first_by: list[dict[int, tuple[int, int]]] = [{} for _ in facts]  # author -> (message id, bucket)

    def feed(self, m: Msg) -> None:
        if not m.counted or not m.content:
            return
        for i, patterns in enumerate(self.patterns):
            if patterns and all(p.search(m.content) for p in patterns):
                self.mentions[i][m.bucket] += 1
                if m.author_id not in self.first_by[i]:
                    self.first_by[i][m.author_id] = (m.id, m.bucket)

    def result(self) -> list[dict[str, Any]]:
        out = []
        axis = self.window.axis()
        for i, fact in enumerate(self.facts):
            firsts = sorted(self.first_by[i].items(), key=lambda kv: kv[1][0])
            new_per_bucket = [0] * self.window.buckets
            new_agents = [0] * self.window.buckets
            for author, (_, bucket) in firsts:
                new_per_bucket[bucket] += 1
                new_agents[bucket] += author in self.agents
            curve, informed, agents_informed = [], 0, 0
            for b, point in enumerate(axis):
                informed += new_per_bucket[b]
                agents_informed += new_agents[b]
                curve.append({**point, "mentions": self.mentions[i][b], "informed": informed, "agents_informed": agents_informed})
            speakers = [{"id": str(a), "name": self.names.get(a, str(a)), "agent": a in self.agents, "message_id": str(mid),
                         "sim_seconds": curve[b]["sim_seconds"]} for a, (mid, b) in firsts]
            out.append({"fact": fact.label, "keywords": list(fact.keywords), "mentions": sum(self.mentions[i]),
                        "informed": len(firsts), "agents_informed": sum(1 for a, _ in firsts if a in self.agents),
                        "agents": len(self.agents), "first": speakers[0] if speakers else None, "speakers": speakers[:LINKED],
                        "curve": curve})
        return out
