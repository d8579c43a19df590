"""Memory cost per message remembered by many witnesses (issue 18): Chroma requests, SQL
statements and time of one `Memories.observe`, and one witness's recall afterwards.

    .venv/bin/python bench/memory_witness.py [--witnesses 500] [--messages 12] [--fact-every 3]

The same script measures any version of the code that has `Memories.observe(seen, witnesses,
names)`: run it with another checkout's interpreter (e.g. /work/main/.venv/bin/python
bench/memory_witness.py) for the figures before a change. One society, one channel followed by
every witness; each message is said by one of them, mentions another, and every --fact-every-th
states a fact ("I work at ..."). Two warm-up messages first (collections, audiences, the
embedder), then --messages measured ones. Chroma runs as `up` runs it (`townsquare memory
serve`, HTTP on loopback): its requests are counted at the HTTP client. PostgreSQL: DATABASE_URL
(a schema of its own, dropped at the end), used only by code that keeps rows there.
The LAST line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api as _api  # noqa: E402
from memory import rss_mib, start_server, stats  # noqa: E402

SENTENCES = ["the harbour festival starts on Saturday with lanterns", "the night bus was late again and everyone was cold",
             "the market has cherries from the hills this week", "the council will vote on the new bridge tomorrow",
             "the jazz club on Mill Street opens a late session", "my tomatoes finally turned red on the rooftop garden"]


class Requests:
    """Counts HTTP requests of this process (Chroma's client speaks httpx)."""

    def __init__(self) -> None:
        import httpx

        self.count = 0
        original = httpx.Client.send

        def send(client: object, request: object, *args: object, **kwargs: object) -> object:
            self.count += 1
            return original(client, request, *args, **kwargs)  # type: ignore[arg-type]

        httpx.Client.send = send  # type: ignore[method-assign]


async def run(args: argparse.Namespace, chroma_url: str, results: dict) -> None:
    from townsquare.agents.memory import remember
    from townsquare.agents.memory.remember import Seen, open_memories
    from townsquare.platform.core.config import Settings

    shared = hasattr(remember, "Ledger")  # the code of issue 18 keeps per-agent rows in PostgreSQL
    results["code"] = "shared (one vector per message)" if shared else "per agent (one collection per agent)"
    schema = f"bench_witness_{secrets.token_hex(3)}"
    database_url = os.environ.get("DATABASE_URL")
    if shared:
        if not database_url:
            raise SystemExit("DATABASE_URL is needed for the shared memory's rows")
        from townsquare.platform.db.migrate import upgrade
        from townsquare.platform.services.embedded import to_asyncpg_url

        database_url = to_asyncpg_url(database_url)
        upgrade(database_url, schema)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="townsquare-witness-")), chroma_url=chroma_url,
                        database_url=database_url, database_schema=schema)
    memories = open_memories(settings)
    counter = Requests()
    statements = None
    if shared:
        from townsquare.platform.db.engine import QueryCounter

        statements = QueryCounter.of(memories.ledger.engine)
    rng = random.Random(args.seed)
    guild = rng.randrange(10**15, 10**16)
    witnesses = [rng.randrange(10**15, 10**16) for _ in range(args.witnesses)]
    names = {w: f"Member{i}" for i, w in enumerate(witnesses)}
    members = {n: w for w, n in names.items()}
    rows: list[dict] = []
    try:
        for i in range(2 + args.messages):
            author = witnesses[i % len(witnesses)]
            addressed = witnesses[(i * 7 + 3) % len(witnesses)]
            text = f"@{names[addressed]} {SENTENCES[i % len(SENTENCES)]}, number {i}"
            if args.fact_every and i % args.fact_every == 0:
                text += f". I work at the {rng.choice(['bakery', 'library', 'harbour', 'mill'])}"
            kwargs = {"guild_id": guild} if shared else {}
            seen = Seen(rng.randrange(10**17, 10**18), 42, "general", author, names[author], text, time.time(), frozenset({addressed}),
                        None, members, **kwargs)
            before_http, before_sql = counter.count, statements.count if statements else 0
            cpu0, t = time.process_time(), time.perf_counter()
            gained = await memories.observe(seen, witnesses, names)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu0
            assert len(gained) == len(witnesses), len(gained)
            if i >= 2:
                rows.append({"ms": wall * 1000, "cpu_ms": cpu * 1000, "chroma_requests": counter.count - before_http,
                             "sql_statements": (statements.count - before_sql) if statements else 0, "fact": "I work" in text})
                _api.log(f"message {i - 1}: {wall * 1000:.0f} ms, {counter.count - before_http} Chroma requests"
                         + (f", {statements.count - before_sql} SQL statements" if statements else ""))
        recalls = []
        for i in range(args.recalls):
            agent = witnesses[rng.randrange(len(witnesses))]
            t = time.perf_counter()
            got = await memories.recall(agent, SENTENCES[i % len(SENTENCES)], {witnesses[0]: names[witnesses[0]]}, k=4)
            recalls.append((time.perf_counter() - t) * 1000)
            assert got.used
        results["per_message"] = {
            "wall": stats([r["ms"] for r in rows]), "process_cpu": stats([r["cpu_ms"] for r in rows]),
            "chroma_requests_mean": round(sum(r["chroma_requests"] for r in rows) / len(rows), 1),
            "chroma_requests_max": max(r["chroma_requests"] for r in rows),
            "sql_statements_mean": round(sum(r["sql_statements"] for r in rows) / len(rows), 1),
            "with_fact": sum(r["fact"] for r in rows)}
        results["recall_one_witness"] = stats(recalls)
        results["rss_mib"] = {"bench_process": rss_mib()}
    finally:
        if shared:
            await memories.ledger.engine.dispose()
            import asyncpg

            conn = await asyncpg.connect(_api.plain_pg_dsn(database_url))  # type: ignore[arg-type]
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--witnesses", type=int, default=500)
    p.add_argument("--messages", type=int, default=12)
    p.add_argument("--fact-every", type=int, default=3)
    p.add_argument("--recalls", type=int, default=30)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    results = _api.bench_header("memory_witness")
    results["parameters"] = vars(args)
    with tempfile.TemporaryDirectory(prefix="townsquare-witness-chroma-") as tmp:
        proc, url = start_server(Path(tmp) / "chroma")
        try:
            asyncio.run(run(args, url, results))
            results["rss_mib"]["chroma_server"] = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    results["load"] = os.getloadavg()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
