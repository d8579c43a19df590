"""Analytics benchmark: the time and memory to compute the scorecard of a large channel and to
export it.

    .venv/bin/python bench/analytics.py [--messages 100000] [--hours 24] [--agents 25] [--topic-sample 1500]
                                        [--formats parquet,csv] [--limit-seconds 900]

Needs DATABASE_URL (PostgreSQL; REDIS_URL too, or redis://127.0.0.1:6379/0). Works in a fresh
schema `bench_<hex>` (migrated, dropped at the end) and Redis prefix. Seeds a society of
--agents agents (the bundled `city` society's first ones), then writes --messages messages into
one channel over --hours (COPY, in batches): varied lines from a fixed seed, with a planted fact
told by one agent and repeated by others, replies (worker nonces), a looping agent and a topic
surge in the last sixth. Then, each in turn: the scorecard (platform/analytics/scorecard.py:
one pass in batches from a server-side cursor, topics from a sample embedded by MiniLM), and
the exports (platform/analytics/export.py) in each format. For each: wall time, the process's
CPU time, and the peak resident memory above what the process held before it (RSS sampled
every 20 ms from /proc/self/statm). The load average is printed before and after. Loopback
only; --limit-seconds bounds the whole run. The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))
import api as _api  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")

SUBJECTS = ["the market", "the bakery", "the new tram line", "the harbour", "the library", "the football club", "the night bus",
            "the community garden", "the jazz bar", "the old cinema", "the bike lanes", "the rent", "the weather", "the museum"]
VERBS = ["is busier than ever", "needs more volunteers", "opened late again", "was lovely this morning", "feels different lately",
         "has a new owner", "keeps surprising me", "could use a fresh coat of paint", "is where I met my best friend",
         "smelled of coffee and rain"]
TAILS = ["what do you think?", "honestly.", "I'm not sure how I feel about it.", "we should go together.", "any news on that?",
         "it made my day.", "that's what I heard anyway.", "", "", ""]
SURGE = ["the storm knocked the power out along the river", "flood water is rising near the river bridge",
         "the river burst its banks by the harbour", "sandbags are going up along the river wall"]
FACT = "the mayor is opening a rooftop garden on the town hall next Saturday"


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Peak:
    """The process's peak RSS while a block runs (sampled), and its CPU and wall time."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.peak = 0

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.02)

    def __enter__(self) -> "Peak":
        self.base = rss()
        self.peak = self.base
        self.cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.perf_counter()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self.t0
        self.stop.set()
        self.thread.join()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu = (cpu1.ru_utime - self.cpu0.ru_utime) + (cpu1.ru_stime - self.cpu0.ru_stime)

    def report(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2), "rss_before_mb": round(self.base / 2**20, 1),
                "peak_above_mb": round((self.peak - self.base) / 2**20, 1)}


def lines(n: int, agents: list[int], t0: float, hours: float, seed: int) -> Any:
    """(id, author, content, nonce) in time order: the synthetic channel."""
    from townsquare.platform.analytics.window import id_at

    rng = random.Random(seed)
    span = hours * 3600
    looper = agents[-1]
    previous: int | None = None
    for i in range(n):
        at = t0 + span * i / n
        mid = id_at(at) | (i & 0x3FFFFF)
        author = rng.choice(agents)
        frac = i / n
        if frac > 5 / 6 and rng.random() < 0.3:
            text = rng.choice(SURGE) + f" ({rng.randint(1, 99)})"
        elif author == looper and rng.random() < 0.5:
            text = "I really think we should talk about the fountain again."
        elif i == n // 20 or (frac > 0.05 and rng.random() < 0.002):
            text = f"did you hear? {FACT}"
        else:
            text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)}, {rng.choice(TAILS)}".rstrip(", ")
        nonce = f"ev{previous}" if previous is not None and rng.random() < 0.6 else f"rv{mid}"
        yield mid, author, text, nonce
        previous = mid


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from townsquare.agents.society.persona import load_society
    from townsquare.platform.actions import agents as agent_actions, users
    from townsquare.platform.analytics.export import export
    from townsquare.platform.analytics.scorecard import compute, parse_facts
    from townsquare.platform.analytics.window import id_at
    from townsquare.platform.api.app import build_platform, close_platform
    from townsquare.platform.core.config import Settings
    from townsquare.platform.db.migrate import upgrade

    from townsquare.platform.services.embedded import resolve_services

    services = resolve_services(Settings(database_url=os.environ["DATABASE_URL"],
                                         redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")))
    database_url, redis_url = services.database_url, services.redis_url
    tag = secrets.token_hex(4)
    schema = f"bench_{tag}"
    settings = Settings(database_url=database_url, redis_url=redis_url, database_schema=schema, redis_prefix=f"ts:bench:{tag}:",
                        analytics_topic_sample=args.topic_sample, data_dir=Path(tempfile.mkdtemp(prefix="analytics-bench-")),
                        log_level="WARNING")
    await asyncio.to_thread(upgrade, database_url, schema)
    platform = await build_platform(settings, database_url, redis_url)
    out: dict[str, Any] = {"benchmark": "analytics", "messages": args.messages, "hours": args.hours, "agents": args.agents,
                           "topic_sample": args.topic_sample, "machine": _api.machine(), "load_before": os.getloadavg()}
    folder = Path(tempfile.mkdtemp(prefix="analytics-export-"))
    try:
        admin, _ = await users.do_register(platform, username=f"admin{tag}", password="correct horse battery", is_admin=True)
        spec = load_society("city")
        spec = spec.model_copy(update={"agents": spec.agents[:args.agents]})
        guild_id = await agent_actions.do_found_society(platform, admin.id, spec, f"bench {tag}")
        async with platform.read() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            channel = await driver.fetchval("SELECT id FROM channels WHERE guild_id = $1 AND type = 0 ORDER BY position LIMIT 1", guild_id)
            agents = [r["id"] for r in await driver.fetch("SELECT id FROM agents WHERE guild_id = $1 ORDER BY id", guild_id)]
        t0 = time.time() - args.hours * 3600 - 60
        started = time.perf_counter()
        batch: list[tuple[Any, ...]] = []
        async with platform.read() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            for mid, author, text, nonce in lines(args.messages, agents, t0, args.hours, seed=1):
                batch.append((mid, channel, guild_id, author, text, nonce))
                if len(batch) >= 10_000:
                    await driver.copy_records_to_table("messages", records=batch, schema_name=schema,
                                                       columns=["id", "channel_id", "guild_id", "author_id", "content", "nonce"])
                    batch = []
            if batch:
                await driver.copy_records_to_table("messages", records=batch, schema_name=schema,
                                                   columns=["id", "channel_id", "guild_id", "author_id", "content", "nonce"])
            await driver.execute(f'ANALYZE "{schema}".messages')
        out["seed_s"] = round(time.perf_counter() - started, 1)
        print(f"seeded {args.messages} messages in {out['seed_s']} s", flush=True)
        since = id_at(t0)
        facts = parse_facts(["rooftop garden=rooftop,garden"])

        from townsquare.agents.brain.embed import get_embedder

        get_embedder().embed(["warm up"])  # the embedder's one-time load is not the scorecard's
        with Peak() as p:
            card = await compute(platform, guild_id, since, None, facts)
        out["scorecard"] = {**p.report(), "messages_seen": card["activity"]["messages"], "topics": card["topics"].get("k"),
                            "rising": [t["label"] for t in card["topics"].get("rising", [])], "alerts": len(card["alerts"]),
                            "informed": card["diffusion"][0]["informed"], "near_rate": card["text_quality"]["near_rate"]}
        print(f"scorecard: {out['scorecard']}", flush=True)
        for fmt in args.formats.split(","):
            target = folder / fmt
            with Peak() as p:
                manifest = await export(platform, guild_id, fmt, target, since, None, facts)
            size = sum(f.stat().st_size for f in target.iterdir())
            out[f"export_{fmt}"] = {**p.report(), "bytes": size, "messages_rows": manifest["files"].get("messages", {}).get("rows")}
            print(f"export {fmt}: {out[f'export_{fmt}']}", flush=True)
            shutil.rmtree(target, ignore_errors=True)
    finally:
        out["load_after"] = os.getloadavg()
        async with platform.engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        keys = [k async for k in platform.redis.scan_iter(match=f"ts:bench:{tag}:*")]
        if keys:
            await platform.redis.delete(*keys)
        await close_platform(platform)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--agents", type=int, default=25)
    p.add_argument("--topic-sample", type=int, default=1500)
    p.add_argument("--formats", default="parquet,csv")
    p.add_argument("--limit-seconds", type=float, default=900.0)
    args = p.parse_args(argv)
    if not 1 <= args.messages <= 1_000_000:
        p.error("--messages is 1 to 1,000,000")

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(run(args), timeout=args.limit_seconds)

    result = asyncio.run(bounded())
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
