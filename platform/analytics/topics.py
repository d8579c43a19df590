"""Topics over time, from sentence embeddings: what the society talks about, and what is rising.

Embedding every message of a long window would cost minutes (about 4 ms a message on these
machines), so a seeded reservoir sample of the window's messages (`TOWNSQUARE_ANALYTICS_TOPIC_SAMPLE`,
each message equally likely, the same messages for the same window) is embedded with the
agents' own embedder (all-MiniLM-L6-v2, agents/brain/embed.py; vectors kept in a bounded
in-process cache by message id, so a dashboard refresh embeds only what is new), clustered with
spherical k-means (k from 2 to 8, the one with the best silhouette, k-means++ seeded), and each
cluster is labelled by its top terms (class-based TF-IDF: frequent in the cluster, rare
elsewhere). Over time: each topic's share of the sampled messages per bucket. Rising: the
topic's share over the last third of the window at least doubles its share before, with at
least 3 sampled messages in that last third.
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections import Counter, OrderedDict
from typing import Any

import numpy as np

from .message import Msg
from .window import Window

K_RANGE = range(2, 9)
ITERATIONS = 30
SEED = 17
MIN_TEXT = 12  # characters: shorter lines ("ok!", "haha") say nothing of a topic
MIN_SAMPLE = 8
TOP_TERMS = 5
RISE_FACTOR = 2.0
RISE_MIN = 3
CACHE_MAX = 20_000  # vectors kept by message id (384 float32 each: ~30 MB)

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren't as at be because been before being below between both
but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each even ever every few for from
further get gets getting got had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself just let's like me more most much must
mustn't my myself no nor not now of off oh ok okay on once one only or other ought our ours ourselves out over own really
same shan't she she'd she'll she's should shouldn't so some still such sure than that that's the their theirs them
themselves then there there's these they they'd they'll they're they've thing things think this those though through to too
under until up upon us very was wasn't we we'd we'll we're we've well were weren't what what's when when's where where's
which while who who's whom why why's will with won't would wouldn't yeah yes yet you you'd you'll you're you've your yours
yourself yourselves good great nice know going go maybe something anyone everyone someone lot lots today right back make
want way see say said day time new people always never yes hey hi hello thanks thank love lol haha honestly actually
along around near across since while keep keeps kept let lets gonna wanna
""".split())
_WORD = re.compile(r"[a-z][a-z'-]{2,}")

_cache: "OrderedDict[int, np.ndarray]" = OrderedDict()
_cache_lock = threading.Lock()


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower().replace("’", "'")) if w not in STOPWORDS and not w.endswith("'s")]


class TopicSample:
    """A seeded reservoir (Algorithm R) of the window's messages that say something."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.rng, self.seen = size, random.Random(seed), 0
        self.items: list[tuple[int, int, int, str]] = []  # (message id, bucket, author, text)

    def feed(self, m: Msg) -> None:
        if not m.counted or self.size <= 0 or len(m.content or "") < MIN_TEXT or not terms(m.content):
            return
        self.seen += 1
        item = (m.id, m.bucket, m.author_id, m.content[:500])
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = item


def embed(ids: list[int], texts: list[str]) -> np.ndarray:
    """The texts' vectors, from the cache when these messages were embedded before."""
    from ...agents.brain.embed import get_embedder

    with _cache_lock:
        known = {i: _cache[i] for i in ids if i in _cache}
    missing = [k for k, i in enumerate(ids) if i not in known]
    if missing:
        vectors = get_embedder().embed([texts[k] for k in missing])
        with _cache_lock:
            for row, k in enumerate(missing):
                known[ids[k]] = _cache[ids[k]] = vectors[row]
            while len(_cache) > CACHE_MAX:
                _cache.popitem(last=False)
    return np.stack([known[i] for i in ids]).astype(np.float32)


def kmeans(x: np.ndarray, k: int, seed: int = SEED) -> np.ndarray:
    """Spherical k-means (unit vectors, cosine) with k-means++ seeding: the label of each row."""
    rng = np.random.default_rng(seed)
    n = len(x)
    centres = [x[rng.integers(n)]]
    for _ in range(1, k):
        d = np.maximum(0.0, 1.0 - np.max(x @ np.stack(centres).T, axis=1))
        p = d / d.sum() if d.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(x[rng.choice(n, p=p)])
    c = np.stack(centres)
    labels = np.zeros(n, dtype=np.int64)
    for it in range(ITERATIONS):
        new = np.argmax(x @ c.T, axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                v = members.sum(axis=0)
                c[j] = v / (np.linalg.norm(v) or 1.0)
    return labels


def silhouette(distance: np.ndarray, labels: np.ndarray) -> float:
    ks = np.unique(labels)
    if len(ks) < 2:
        return -1.0
    n = len(labels)
    sums = np.stack([distance[:, labels == j].sum(axis=1) for j in ks], axis=1)  # (n, clusters)
    sizes = np.array([(labels == j).sum() for j in ks], dtype=float)
    own = np.searchsorted(ks, labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(n), own] / np.maximum(own_size - 1, 1), 0.0)
    mean_other = sums / sizes
    mean_other[np.arange(n), own] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-9), 0.0)
    return float(s.mean())


def cluster(x: np.ndarray) -> np.ndarray:
    distance = np.maximum(0.0, 1.0 - x @ x.T)
    best, best_score = np.zeros(len(x), dtype=np.int64), -2.0
    for k in K_RANGE:
        if k >= len(x):
            break
        labels = kmeans(x, k)
        score = silhouette(distance, labels)
        if score > best_score + 1e-9:
            best, best_score = labels, score
    return best


def label_terms(texts: list[str], labels: np.ndarray) -> dict[int, list[str]]:
    """Class-based TF-IDF: a term's frequency in the cluster times log(1 + A / its frequency
    overall), A the mean number of terms per cluster."""
    per: dict[int, Counter[str]] = {}
    for text, label in zip(texts, labels):
        per.setdefault(int(label), Counter()).update(terms(text))
    overall: Counter[str] = Counter()
    for c in per.values():
        overall.update(c)
    mean_words = sum(overall.values()) / max(1, len(per))
    out = {}
    for label, counts in per.items():
        words = sum(counts.values()) or 1
        scored = sorted(counts, key=lambda t: (-(counts[t] / words) * math.log(1 + mean_words / overall[t]), t))
        out[label] = scored[:TOP_TERMS]
    return out


def analyse(sample: TopicSample, window: Window) -> dict[str, Any]:
    items = sorted(sample.items)
    if sample.size <= 0:
        return {"available": False, "reason": "disabled (TOWNSQUARE_ANALYTICS_TOPIC_SAMPLE=0)", "topics": [], "rising": []}
    if len(items) < MIN_SAMPLE:
        return {"available": False, "reason": f"too few messages ({len(items)})", "topics": [], "rising": [], "sampled": len(items)}
    try:
        x = embed([i[0] for i in items], [i[3] for i in items])
    except Exception as exc:  # noqa: BLE001 - the embedder's files may be missing: the rest of the scorecard stands
        return {"available": False, "reason": f"no embedder: {type(exc).__name__}", "topics": [], "rising": []}
    labels = cluster(x)
    named = label_terms([i[3] for i in items], labels)
    buckets = window.buckets
    per_bucket = [0] * buckets
    for _, b, _, _ in items:
        per_bucket[b] += 1
    late_from = buckets - max(1, buckets // 3)
    late_total = sum(per_bucket[late_from:])
    early_total = sum(per_bucket[:late_from])
    topics = []
    axis = window.axis()
    for label in sorted(set(int(v) for v in labels)):
        index = np.flatnonzero(labels == label)
        rows = [items[k] for k in index]
        counts = [0] * buckets
        for _, b, _, _ in rows:
            counts[b] += 1
        late = sum(counts[late_from:])
        early = sum(counts[:late_from])
        late_share = late / late_total if late_total else 0.0
        early_share = early / early_total if early_total else 0.0
        rising = late >= RISE_MIN and late_share >= RISE_FACTOR * early_share and late_share > early_share
        closeness = x[index] @ x[index].mean(axis=0)
        nearest = [rows[k] for k in np.argsort(-closeness, kind="stable")[:3]]
        topics.append({
            "id": label, "label": " / ".join(named.get(label, [])[:3]) or f"topic {label}", "terms": named.get(label, []),
            "sampled": len(rows), "share": round(len(rows) / len(items), 4),
            "early_share": round(early_share, 4), "late_share": round(late_share, 4), "rising": rising,
            "growth": round(late_share - early_share, 4),
            "examples": [{"message_id": str(r[0]), "text": r[3][:160]} for r in nearest],
            "series": [{**axis[b], "count": counts[b], "share": round(counts[b] / per_bucket[b], 4) if per_bucket[b] else None}
                       for b in range(buckets)],
        })
    topics.sort(key=lambda t: (-t["sampled"], t["id"]))
    rising = sorted((t for t in topics if t["rising"]), key=lambda t: -t["growth"])
    return {"available": True, "sampled": len(items), "eligible": sample.seen, "k": len(topics), "topics": topics,
            "rising": [{"id": t["id"], "label": t["label"], "growth": t["growth"], "late_share": t["late_share"],
                        "early_share": t["early_share"]} for t in rising]}
