"""Who speaks how much, and how conversations hold together.

- rate: messages per minute over the window (all, agents', people's) and per time bucket.
- reply depth: a message that answered another (the worker's nonce `ev<id>` names the message
  its turn answered) has depth 1 + that message's depth; a message answering nothing has depth
  0; one answering a message before the window has depth 1. The same over message_reference
  (Discord replies) alone is the reference depth.
- reciprocity over directed agent -> agent pairs (a, b): "answered" (a posted an answer to a
  message of b) and "explicit" (a replied to b with message_reference, or mentioned b); the
  share of pairs whose reverse pair also occurs (networkx's definition).

Memory: one small entry per message of the window (its author and depth), no texts.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .message import Msg
from .window import Window


def reciprocity(pairs: set[tuple[int, int]]) -> dict[str, Any]:
    pairs = {p for p in pairs if p[0] != p[1]}
    mutual = sum(1 for a, b in pairs if (b, a) in pairs)
    return {"pairs": len(pairs), "reciprocated_pairs": mutual, "reciprocity": round(mutual / len(pairs), 3) if pairs else None}


class Activity:
    def __init__(self, window: Window | None, agents: dict[int, str], names: dict[int, str] | None = None) -> None:
        self.window, self.agents, self.names = window, agents, names or agents
        buckets = window.buckets if window else 1
        self.series_all = [0] * buckets
        self.series_agents = [0] * buckets
        self.by_author: Counter[int] = Counter()
        self.author_of: dict[int, int] = {}  # every message fed (context too): who wrote it
        self.depth: dict[int, int] = {}  # counted messages only
        self.ref_depth: dict[int, int] = {}
        self.answering: list[int] = []  # depths of the messages that answered one
        self.answered_pairs: set[tuple[int, int]] = set()
        self.explicit_pairs: set[tuple[int, int]] = set()
        self.with_reference = self.with_mentions = 0
        self.total = self.agent_total = 0
        self.depth_sum = self.depth_max = self.ref_sum = self.ref_max = 0

    def feed(self, m: Msg) -> None:
        self.author_of[m.id] = m.author_id
        if not m.counted:
            return
        self.total += 1
        self.series_all[m.bucket] += 1
        self.by_author[m.author_id] += 1
        if m.agent:
            self.agent_total += 1
            self.series_agents[m.bucket] += 1
        target = m.answers
        if target is not None and target in self.author_of:
            d = self.depth.get(target, 0) + 1
            self.answering.append(d)
            if m.agent and self.author_of[target] in self.agents:
                self.answered_pairs.add((m.author_id, self.author_of[target]))
        else:
            d = 0
        self.depth[m.id] = d
        self.depth_sum += d
        self.depth_max = max(self.depth_max, d)
        ref = m.ref
        rd = self.ref_depth.get(ref, 0) + 1 if ref is not None and ref in self.author_of else 0
        self.ref_depth[m.id] = rd
        self.ref_sum += rd
        self.ref_max = max(self.ref_max, rd)
        if ref is not None:
            self.with_reference += 1
            if m.agent and self.author_of.get(ref) in self.agents:
                self.explicit_pairs.add((m.author_id, self.author_of[ref]))
        if m.mentions:
            self.with_mentions += 1
            if m.agent:
                self.explicit_pairs.update((m.author_id, x) for x in m.mentions if x in self.agents)

    def result(self) -> dict[str, Any]:
        minutes = (self.window.seconds if self.window else 60.0) / 60
        n = self.total
        out: dict[str, Any] = {
            "messages": n, "agent_messages": self.agent_total, "human_messages": n - self.agent_total,
            "per_minute": round(n / minutes, 3), "agent_per_minute": round(self.agent_total / minutes, 3),
            "by_author": [{"id": str(a), "name": self.names.get(a, str(a)), "agent": a in self.agents, "messages": c}
                          for a, c in self.by_author.most_common()],
            "silent_agents": [{"id": str(a), "name": name} for a, name in sorted(self.agents.items(), key=lambda kv: kv[1])
                              if not self.by_author.get(a)],
        }
        if self.window:
            per = self.window.bucket_seconds / 60
            out["series"] = [{**point, "messages": self.series_all[i], "agent_messages": self.series_agents[i],
                              "per_minute": round(self.series_all[i] / per, 3)} for i, point in enumerate(self.window.axis())]
        out["conversation"] = {
            "reply_depth_mean": round(self.depth_sum / n, 3) if n else None,
            "reply_depth_mean_of_answers": round(sum(self.answering) / len(self.answering), 3) if self.answering else None,
            "reply_depth_max": self.depth_max if n else None,
            "answering_messages": len(self.answering),
            "reference_depth_mean": round(self.ref_sum / n, 3) if n else None,
            "reference_depth_max": self.ref_max if n else None,
            "messages_with_reference": self.with_reference, "messages_with_mentions": self.with_mentions,
        }
        out["reciprocity"] = {"answered": reciprocity(self.answered_pairs), "explicit": reciprocity(self.explicit_pairs),
                              "possible_pairs": len(self.agents) * (len(self.agents) - 1)}
        return out
