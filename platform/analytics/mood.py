"""Sentiment over time: the same lexicon score the agents' moods follow (agents/mind/sentiment.py),
-1..1 per message; per bucket the mean over the messages that carry any (a line with no
sentiment word scores 0 and is left out of the mean, so small talk does not dilute it), and
per member the mean with its most negative lines (the anomalies' "hostile")."""

from __future__ import annotations

import heapq
from typing import Any

from ...agents.mind.sentiment import sentiment
from .message import Msg
from .window import Window

WORST_KEPT = 5


class Sentiment:
    def __init__(self, window: Window, names: dict[int, str]) -> None:
        self.window, self.names = window, names
        self.sums = [0.0] * window.buckets
        self.counts = [0] * window.buckets
        self.negative = [0] * window.buckets
        self.positive = [0] * window.buckets
        self.by_author: dict[int, list[float]] = {}  # [sum, scored, negative, messages]
        self.worst: dict[int, list[tuple[float, int]]] = {}  # author -> heap of (-score... ) most negative lines

    def score(self, m: Msg) -> float:
        return sentiment(m.content or "")

    def feed(self, m: Msg) -> None:
        if not m.counted:
            return
        s = self.score(m)
        entry = self.by_author.setdefault(m.author_id, [0.0, 0, 0, 0])
        entry[3] += 1
        if s == 0.0:
            return
        self.sums[m.bucket] += s
        self.counts[m.bucket] += 1
        entry[0] += s
        entry[1] += 1
        if s < 0:
            self.negative[m.bucket] += 1
            entry[2] += 1
            heap = self.worst.setdefault(m.author_id, [])
            item = (-s, m.id)  # a min-heap of the most negative: keep the largest -s
            if len(heap) < WORST_KEPT:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        else:
            self.positive[m.bucket] += 1

    def author_mean(self, author: int) -> tuple[float | None, int, int, int]:
        total, scored, negative, messages = self.by_author.get(author, [0.0, 0, 0, 0])
        return (total / scored if scored else None), int(scored), int(negative), int(messages)

    def worst_ids(self, author: int) -> list[int]:
        return [mid for _, mid in sorted(self.worst.get(author, []), reverse=True)]

    def result(self) -> dict[str, Any]:
        scored = sum(self.counts)
        series = [{**point, "mean": round(self.sums[i] / self.counts[i], 4) if self.counts[i] else None,
                   "scored": self.counts[i], "positive": self.positive[i], "negative": self.negative[i]}
                  for i, point in enumerate(self.window.axis())]
        by_author = []
        for author in self.by_author:
            mean, n, neg, messages = self.author_mean(author)
            by_author.append({"id": str(author), "name": self.names.get(author, str(author)), "mean": round(mean, 4) if mean is not None else None,
                              "scored": n, "negative": neg, "messages": messages})
        by_author.sort(key=lambda a: (a["mean"] if a["mean"] is not None else 0.0, a["id"]))
        return {"mean": round(sum(self.sums) / scored, 4) if scored else None, "scored_messages": scored, "series": series,
                "by_author": by_author}
