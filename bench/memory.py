"""Memory benchmark: one agent's store of 100k memories in Chroma, retrieval latency (recency x
importance x relevance), embedding throughput, resident memory.

    .venv/bin/python bench/memory.py [--n 100000] [--unique 10000] [--queries 300] [--embedded]

What it does, all on loopback, offline:
  1. embeds --unique distinct chat-like sentences (bench/embed.py's generator) with the agents'
     embedder (all-MiniLM-L6-v2, int8 ONNX, padded to each batch's longest input): the
     embedding throughput, in sentences/s;
  2. fills ONE agent's collection with --n memories: each is one of those sentences (tagged with
     its copy number) with its real vector slightly perturbed (gaussian noise, sigma 0.02, then
     renormalised), random importance 1..10 and ages over 30 days. Embedding all 100k for real
     would take ~15 minutes for the same index shape (--unique N=--n does it);
  3. runs --queries retrievals exactly as a turn does (`MemoryStore.search`: the 40 nearest by
     HNSW, ranked by recency x importance x relevance, k=5), timing separately
     a) retrieval with the query vector given (Chroma + ranking), and
     b) end to end from the query text (embedding the query first),
     plus the same filtered to one person (`about`), as the prompt's "about the people here" does.

--shared measures the memory of issue 18 instead: --n messages of one society of --agents agents
(--channels channels; #general followed by half of them, every other channel by 5-30%), each
stored once in the society's collection with its record in PostgreSQL (DATABASE_URL, a schema of
its own, dropped at the end), as `Memories.observe` writes them; then retrievals as a turn does
them (`Memories.candidates` + ranking, and `Memories.recall` end to end), for an agent that
follows #general and for one that follows a single small channel (the filtered fallback).

By default Chroma runs as `up` runs it: `townsquare memory serve` (its own process, HTTP on
loopback); --embedded uses a PersistentClient in this process instead. Resident memory: this
process, and the Chroma server's. The LAST line printed is one JSON object with everything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as _api  # noqa: E402
from embed import make_sentences, percentile  # noqa: E402

from townsquare.agents.brain.embed import Embedder  # noqa: E402
from townsquare.agents.memory.model import Kind, Memory  # noqa: E402
from townsquare.agents.memory.store import MemoryStore, open_client  # noqa: E402

AGENT = 4242
QUERIES = ["is there a party this weekend?", "what happened at the market", "who was worried about the council",
           "the night bus was late again", "anyone going to the jazz club", "my tomatoes and the rooftop garden"]


def rss_mib(pid: int | str = "self") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p95_ms": round(percentile(values, 95), 2),
            "p99_ms": round(percentile(values, 99), 2), "mean_ms": round(sum(values) / len(values), 2)}


def start_server(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _api.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "memory", "serve", "--port", str(port), "--path", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the Chroma server did not start")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="memories in the agent's store")
    p.add_argument("--unique", type=int, default=10_000, help="distinct sentences embedded for real")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--embedded", action="store_true", help="Chroma in this process instead of `memory serve`")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--shared", action="store_true", help="one society's shared store (issue 18) instead of one agent's")
    p.add_argument("--agents", type=int, default=1000, help="--shared: agents in the society")
    p.add_argument("--channels", type=int, default=8, help="--shared: channels in the society")
    args = p.parse_args()
    results = _api.bench_header("memory")
    results["parameters"] = vars(args)
    rng = random.Random(args.seed)
    nprng = np.random.default_rng(args.seed)

    with tempfile.TemporaryDirectory(prefix="townsquare-memory-bench-") as tmp:
        proc = None
        if args.embedded:
            client = open_client(None, Path(tmp) / "chroma")
        else:
            proc, url = start_server(Path(tmp) / "chroma")
            client = open_client(url, None)
        try:
            t = time.perf_counter()
            embedder = Embedder()
            results["embedder_load_s"] = round(time.perf_counter() - t, 2)
            store = MemoryStore(client, embedder)
            sentences = make_sentences(args.unique, args.seed)
            sentences = [s or "ok" for s in sentences]
            cpu0, t = time.process_time(), time.perf_counter()
            vectors = embedder.embed(sentences)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
            results["embedding"] = {"sentences": len(sentences), "seconds": round(wall, 2), "sentences_per_s": round(len(sentences) / wall, 1),
                                    "cpu_ms_per_sentence": round(cpu * 1000 / len(sentences), 2)}
            _api.log(f"embedding: {len(sentences)} sentences in {wall:.1f} s = {len(sentences) / wall:.0f}/s "
                     f"({cpu * 1000 / len(sentences):.2f} ms CPU each)")

            if args.shared:
                asyncio.run(run_shared(args, store, sentences, vectors, results, rng, nprng))
                results["rss_mib"] = {"bench_process": rss_mib(), "chroma_server": rss_mib(proc.pid) if proc else None}
                return
            now = time.time()
            t = time.perf_counter()
            batch: list[Memory] = []
            rows: list[np.ndarray] = []
            for i in range(args.n):
                base = i % len(sentences)
                text = sentences[base] if i < len(sentences) else f"{sentences[base]} (again, {i // len(sentences)})"
                vec = vectors[base] if i < len(sentences) else vectors[base] + nprng.normal(0, 0.02, vectors.shape[1]).astype(np.float32)
                rows.append(vec / np.linalg.norm(vec))
                at = now - rng.uniform(0, 30 * 86400)
                batch.append(Memory(id=f"m{i}", agent_id=AGENT, kind=Kind.OBSERVATION, text=text, importance=float(rng.randint(1, 10)),
                                    created_at=at, last_access=at, about=(rng.randint(1, 25),), channel_id=rng.randint(1, 8)))
                if len(batch) == 2000:
                    store.add(batch, np.stack(rows))
                    batch, rows = [], []
                    if (i + 1) % 20000 == 0:
                        _api.log(f"filled {i + 1} memories ({time.perf_counter() - t:.0f} s)")
            if batch:
                store.add(batch, np.stack(rows))
            fill = time.perf_counter() - t
            results["fill"] = {"memories": store.count(AGENT), "seconds": round(fill, 1), "per_s": round(args.n / fill, 1)}
            _api.log(f"fill: {args.n} memories in {fill:.0f} s ({args.n / fill:.0f}/s)")

            for q in QUERIES:  # warm-up
                store.search(AGENT, q, now, k=5)
            given, text_e2e, about = [], [], []
            qvecs = embedder.embed(QUERIES)
            for i in range(args.queries):
                qi = i % len(QUERIES)
                t = time.perf_counter()
                found = store.search(AGENT, qvecs[qi], now, k=5)
                given.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                store.search(AGENT, QUERIES[qi] + f" {i}", now, k=5)
                text_e2e.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                store.search(AGENT, qvecs[qi], now, k=2, about=rng.randint(1, 25))
                about.append((time.perf_counter() - t) * 1000)
                assert len(found) == 5
            results["retrieval_vector_given"] = stats(given)
            results["retrieval_from_text"] = stats(text_e2e)
            results["retrieval_about_person"] = stats(about)
            results["rss_mib"] = {"bench_process": rss_mib(), "chroma_server": rss_mib(proc.pid) if proc else None}
            results["mode"] = "embedded" if args.embedded else "memory serve (HTTP)"
            _api.log(f"retrieval, vector given: p50 {results['retrieval_vector_given']['p50_ms']} ms, "
                     f"p95 {results['retrieval_vector_given']['p95_ms']} ms")
            _api.log(f"retrieval from text:     p50 {results['retrieval_from_text']['p50_ms']} ms, "
                     f"p95 {results['retrieval_from_text']['p95_ms']} ms")
            _api.log(f"retrieval about someone: p50 {results['retrieval_about_person']['p50_ms']} ms, "
                     f"p95 {results['retrieval_about_person']['p95_ms']} ms")
            _api.log(f"resident memory: bench {results['rss_mib']['bench_process']} MiB, chroma server {results['rss_mib']['chroma_server']} MiB")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            results["load"] = os.getloadavg()
            print(json.dumps(results))


async def run_shared(args: argparse.Namespace, store: MemoryStore, sentences: list[str], vectors: np.ndarray, results: dict,
                     rng: random.Random, nprng: np.random.Generator) -> None:
    import asyncpg

    from townsquare.agents.memory.ledger import Ledger, audience_id
    from townsquare.agents.memory.remember import Memories
    from townsquare.platform.db.engine import make_engine
    from townsquare.platform.db.migrate import upgrade
    from townsquare.platform.services.embedded import to_asyncpg_url

    if not os.environ.get("DATABASE_URL"):
        raise SystemExit("--shared needs DATABASE_URL")
    url = to_asyncpg_url(os.environ["DATABASE_URL"])
    schema = f"bench_memory_{os.getpid()}"
    upgrade(url, schema)
    engine = make_engine(url, schema=schema, pool_size=4)
    memories = Memories(store, ledger=Ledger(engine, half_life=store.fact_half_life_seconds))
    conn = await asyncpg.connect(_api.plain_pg_dsn(url), server_settings={"search_path": schema})
    try:
        guild = 7_000_000_000_000_000
        agents = [guild + 1 + i for i in range(args.agents)]
        followers = [sorted(rng.sample(agents, args.agents // 2))]
        followers += [sorted(rng.sample(agents, int(args.agents * rng.uniform(0.05, 0.30)))) for _ in range(args.channels - 1)]
        narrow = next(a for a in agents if sum(a in f for f in followers) == 1 and a in followers[-1])  # one small channel only
        broad = next(a for a in followers[0] if sum(a in f for f in followers) >= 2)
        members = [set(f) for f in followers]
        await conn.executemany("INSERT INTO memory_audiences (agent_id, audience_id) VALUES ($1, $2)",
                               [(a, audience_id(guild, f)) for f in followers for a in f])
        now = time.time()
        t = time.perf_counter()
        batch: list[tuple] = []
        ids: list[str] = []
        metas: list[dict] = []
        docs: list[str] = []
        rows: list[np.ndarray] = []
        weights = [0.4] + [0.6 / (args.channels - 1)] * (args.channels - 1)
        for i in range(args.n):
            base = i % len(sentences)
            text = sentences[base] if i < len(sentences) else f"{sentences[base]} (again, {i // len(sentences)})"
            vec = vectors[base] if i < len(sentences) else vectors[base] + nprng.normal(0, 0.02, vectors.shape[1]).astype(np.float32)
            rows.append(vec / np.linalg.norm(vec))
            channel = rng.choices(range(args.channels), weights)[0]
            author = rng.choice(followers[channel])
            aud = audience_id(guild, followers[channel])  # as observe writes it: the channel's followers, the author among them
            at = now - rng.uniform(0, 30 * 86400)
            message_id = 10**17 + i
            batch.append((message_id, guild, 100 + channel, f"c{channel}", author, f"A{author % 1000}", None, None, [], text, at,
                          float(rng.randint(1, 10)), aud))
            ids.append(f"m{message_id}")
            docs.append(text)
            metas.append({"kind": "observation", "channel_id": str(100 + channel), "author_id": str(author), "audience": str(aud),
                          "created_at": at, f"about_{author}": True})
            if len(batch) == 2000 or i == args.n - 1:
                store.put_shared(guild, ids, docs, np.stack(rows), metas)
                await conn.copy_records_to_table("memory_messages", records=batch, columns=[
                    "message_id", "guild_id", "channel_id", "channel_name", "author_id", "author_name", "reply_to", "reply_to_name",
                    "mentions", "content", "created_at", "importance", "audience_id"])
                batch, ids, docs, metas, rows = [], [], [], [], []
                if (i + 1) % 20000 == 0:
                    _api.log(f"filled {i + 1} messages ({time.perf_counter() - t:.0f} s)")
        fill = time.perf_counter() - t
        await conn.execute("ANALYZE")
        results["fill"] = {"messages": args.n, "seconds": round(fill, 1), "per_s": round(args.n / fill, 1),
                           "audience_rows": sum(len(f) for f in followers)}
        _api.log(f"fill: {args.n} messages in {fill:.0f} s ({args.n / fill:.0f}/s), one vector each")
        qvecs = store.embedder.embed(QUERIES)
        for who, agent in (("follows_general", broad), ("one_small_channel", narrow)):
            seen = sum(len(members[c]) > 0 and agent in members[c] for c in range(args.channels))
            for q in qvecs:  # warm-up
                await memories.candidates(agent, q, 20)
            given, recall = [], []
            for i in range(args.queries):
                qi = i % len(QUERIES)
                t = time.perf_counter()
                pool = await memories.candidates(agent, qvecs[qi], 20)
                ranked = store.rank(pool, now, k=5)
                given.append((time.perf_counter() - t) * 1000)
                assert len(ranked) == 5, (who, len(ranked))
                t = time.perf_counter()
                await memories.recall(agent, QUERIES[qi] + f" {i}", {agents[0]: "A"}, now=now, k=5)
                recall.append((time.perf_counter() - t) * 1000)
            results[who] = {"channels_followed": seen, "count": await memories.count(agent), "retrieval_vector_given": stats(given),
                            "recall_from_text": stats(recall)}
            _api.log(f"{who} ({seen} channels, {results[who]['count']} memories): vector given p50 {stats(given)['p50_ms']} ms, "
                     f"p95 {stats(given)['p95_ms']} ms; recall from text p50 {stats(recall)['p50_ms']} ms, p95 {stats(recall)['p95_ms']} ms")
        t = time.perf_counter()
        counts = await memories.count_many(agents)
        results["count_many_ms"] = round((time.perf_counter() - t) * 1000, 1)
        results["count_many_agents"] = len(counts)
        _api.log(f"count_many for {len(counts)} agents: {results['count_many_ms']} ms")
        results["mode"] = "shared society store (memory serve + PostgreSQL)"
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
        await engine.dispose()


if __name__ == "__main__":
    main()
