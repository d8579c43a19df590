"""The scorecard of a society over a window: one pass over its messages (in batches, from a
server-side cursor) feeding every consumer, then the gate's records, the graph snapshots and
the topics. The API, the dashboard, the exports, the report and the benchmarks all call this.

The consumers' CPU work runs in a thread, one batch at a time, so a server computing a large
scorecard keeps answering its other requests between batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ..actions.context import Platform
from ..core.errors import InvalidFormBody
from .activity import Activity
from .anomalies import Anomalies
from .breakthroughs import Breakthroughs
from .diffusion import MAX_FACTS, MAX_KEYWORDS, Diffusion, Fact
from .gate import gate
from .message import Msg
from .mood import Sentiment
from .social import social
from .source import MESSAGES, Society, load_society, message_args, snapshot
from .textstats import TextQuality
from .topics import TopicSample, analyse as analyse_topics
from .window import Window, iso, seconds_of

EXCERPT = 200


def parse_facts(specs: Sequence[str] | None) -> list[Fact]:
    """`keyword,keyword` or `label=keyword,keyword`, at most 10 facts of at most 8 keywords."""
    facts = []
    for i, spec in enumerate(specs or ()):
        fact = Fact.parse(spec)
        if not fact.keywords or len(fact.keywords) > MAX_KEYWORDS or any(len(k) > 60 for k in fact.keywords) or len(fact.label) > 100:
            raise InvalidFormBody.field(f"fact.{i}", "BASE_TYPE_BAD_FACT", "A fact is 1 to 8 comma-separated keywords (each up to 60 characters).")
        facts.append(fact)
    if len(facts) > MAX_FACTS:
        raise InvalidFormBody.field("fact", "BASE_TYPE_MAX_LENGTH", f"At most {MAX_FACTS} facts.")
    return facts


class Pass:
    """The consumers of one pass over the messages."""

    def __init__(self, society: Society, window: Window, facts: list[Fact], topic_sample: int) -> None:
        self.society, self.window = society, window
        agents, names = society.agents, society.names
        self.activity = Activity(window, agents, names)
        self.quality = TextQuality(names)
        self.diffusion = Diffusion(window, facts, agents, names)
        self.mood = Sentiment(window, names)
        self.sample = TopicSample(topic_sample, seed=window.guild_id ^ window.since_id)
        self.anomalies = Anomalies(agents, society.agent_states)
        self.breakthroughs = Breakthroughs(window, agents)
        self.consumers = (self.activity, self.quality, self.diffusion, self.mood, self.sample, self.anomalies, self.breakthroughs)

    def feed_rows(self, rows: Sequence[Any]) -> None:
        window, agents = self.window, self.society.agents
        feeds = [c.feed for c in self.consumers]
        for r in rows:
            at = seconds_of(r["id"])
            m = Msg(r["id"], at, window.bucket_of(at), r["channel_id"], r["author_id"], r["author_id"] in agents, r["content"] or "",
                    r["nonce"], r["referenced_message_id"], r["mentions"] or ())
            for feed in feeds:
                feed(m)


async def compute(platform: Platform, guild_id: int, since: int | None = None, until: int | None = None,
                  facts: list[Fact] | None = None, *, topic_sample: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    settings = platform.settings
    sample_size = settings.analytics_topic_sample if topic_sample is None else topic_sample

    async def live() -> Any:
        from ..actions.graph import compute as graph_now

        return await graph_now(platform, guild_id)

    async with snapshot(platform) as reader:
        society = await load_society(reader, guild_id)
        window = Window.of(guild_id, since, until, now=time.time(), founded=society.founded, sim_speed=settings.sim_speed)
        run = Pass(society, window, list(facts or ()), sample_size)
        async for rows in reader.batches(MESSAGES, *message_args(society, window)):
            await asyncio.to_thread(run.feed_rows, rows)
        gate_section, gate_by_agent = await gate(reader, window)
        graph_section, communities = await social(reader, window, society.names, live)
        alerts = run.anomalies.result(run.activity, run.quality, run.mood, gate_by_agent)
        breakthroughs = run.breakthroughs.result(communities)
        diffusion = run.diffusion.result()
        linked = {int(i) for a in alerts for i in a["message_ids"]} | {int(i) for b in breakthroughs for i in b["message_ids"]}
        linked |= {int(s["message_id"]) for d in diffusion for s in d["speakers"]}
        messages = await _excerpts(reader, sorted(linked))
    topics = await asyncio.to_thread(analyse_topics, run.sample, window)  # embedding: outside the snapshot's transaction
    activity = run.activity.result()
    return {
        "guild_id": str(guild_id), "society": society.name, "generated_at": iso(time.time()), "window": window.describe(),
        "activity": {k: v for k, v in activity.items() if k not in ("conversation", "reciprocity")},
        "conversation": {**activity["conversation"], "reciprocity": activity["reciprocity"]},
        "text_quality": run.quality.result(), "gate": gate_section, "diffusion": diffusion, "graph": graph_section,
        "sentiment": run.mood.result(), "topics": topics, "alerts": alerts, "breakthroughs": breakthroughs,
        "breakthrough_candidates": run.breakthroughs.candidates(),
        "messages": {str(k): v for k, v in messages.items()},
        "compute_ms": round((time.perf_counter() - started) * 1000, 1),
    }


async def _excerpts(reader: Any, ids: list[int]) -> dict[int, Any]:
    """The linked messages' place and first words, so that alerts and breakthroughs read on their own."""
    if not ids:
        return {}
    rows = await reader.fetch("SELECT m.id, m.channel_id, m.guild_id, m.author_id, left(m.content, $2) AS excerpt FROM messages m "
                              "WHERE m.id = ANY($1::bigint[])", ids, EXCERPT)
    return {r["id"]: {"id": str(r["id"]), "channel_id": str(r["channel_id"]), "guild_id": str(r["guild_id"]) if r["guild_id"] else None,
                      "author_id": str(r["author_id"]), "excerpt": r["excerpt"]} for r in rows}


def timeseries(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The scorecard's time series as long rows (bucket start, simulated seconds, metric, key,
    value): what the exports write and a notebook pivots."""
    rows: list[dict[str, Any]] = []

    def add(point: dict[str, Any], metric: str, key: str, value: Any) -> None:
        if value is not None:
            rows.append({"t": point["t"], "sim_seconds": point["sim_seconds"], "metric": metric, "key": key, "value": float(value)})

    for p in card["activity"].get("series", []):
        add(p, "messages", "all", p["messages"])
        add(p, "messages", "agents", p["agent_messages"])
    for p in card["sentiment"]["series"]:
        add(p, "sentiment_mean", "", p["mean"])
    for fact in card["diffusion"]:
        for p in fact["curve"]:
            add(p, "fact_mentions", fact["fact"], p["mentions"])
            add(p, "fact_informed", fact["fact"], p["informed"])
    for topic in card["topics"].get("topics", []):
        for p in topic["series"]:
            add(p, "topic_share", topic["label"], p["share"])
    for p in card["graph"].get("timeline", []):
        add(p, "communities", "", p["communities"])
        add(p, "community_stability", "", p["stability"])
        add(p, "modularity", "", p["modularity"])
    return rows
