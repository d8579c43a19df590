"""Exports of a society over a window, for people who analyse runs elsewhere.

Tables (Parquet or CSV, one file each, written batch by batch from a server-side cursor, so a
large window never sits in memory): messages, reactions, relationships (as they are at the
export), graph_nodes and graph_edges (every graph snapshot of the window), memories (each
agent's memories' metadata: id, kind, importance, created; read through the memory store's
public interface, never its files), llm_calls, interventions (the guild's audit entries: who
changed what), and scorecard (its time series, long form). The social graph (GEXF or GraphML,
networkx): `graph.<ext>` is the window's last snapshot (or the graph now when none was taken),
`graph-<snapshot id>.<ext>` each snapshot of the window. `manifest.json` lists every file with
its row count. Ids are 64-bit integers, times UTC.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import networkx as nx
import orjson

from ..actions.context import Platform
from ..core.errors import InvalidFormBody
from .scorecard import compute as compute_scorecard, timeseries
from .source import MESSAGES, Reader, Society, load_society, message_args, snapshot
from .window import Window, iso, seconds_of

FORMATS = ("parquet", "csv", "gexf", "graphml")
TABLES = ("messages", "reactions", "relationships", "graph_nodes", "graph_edges", "memories", "llm_calls", "interventions", "scorecard")
ZIP_CHUNK = 1 << 16


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise InvalidFormBody.field("format", "BASE_TYPE_CHOICES", f"One of {', '.join(FORMATS)}.")
    return fmt


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    ts = pa.timestamp("ms", tz="UTC")
    i64, f64, s, b = pa.int64(), pa.float64(), pa.string(), pa.bool_()
    return {
        "messages": pa.schema([("id", i64), ("created_at", ts), ("guild_id", i64), ("channel_id", i64), ("author_id", i64),
                               ("author_name", s), ("author_is_agent", b), ("type", pa.int16()), ("content", s),
                               ("referenced_message_id", i64), ("answers_message_id", i64), ("thread_id", i64), ("mentions", s),
                               ("edited_at", ts), ("has_attachments", b)]),
        "reactions": pa.schema([("message_id", i64), ("user_id", i64), ("emoji", s), ("created_at", ts)]),
        "relationships": pa.schema([("source_id", i64), ("target_id", i64), ("affinity", f64), ("familiarity", f64), ("trust", f64),
                                    ("interactions", i64), ("rating", f64), ("rated_at", ts), ("updated_at", ts)]),
        "graph_nodes": pa.schema([("snapshot_id", i64), ("created_at", ts), ("id", i64), ("name", s), ("agent", b), ("bot", b),
                                  ("community", i64), ("influence", f64), ("betweenness", f64), ("reputation", f64),
                                  ("in_degree", i64), ("out_degree", i64), ("in_strength", f64), ("out_strength", f64),
                                  ("clustering", f64), ("x", f64), ("y", f64)]),
        "graph_edges": pa.schema([("snapshot_id", i64), ("created_at", ts), ("source", i64), ("target", i64), ("weight", f64),
                                  ("affinity", f64), ("familiarity", f64), ("trust", f64), ("interactions", i64), ("reciprocated", b)]),
        "memories": pa.schema([("agent_id", i64), ("memory_id", s), ("kind", s), ("importance", f64), ("created_at", ts)]),
        "llm_calls": pa.schema([("id", i64), ("created_at", ts), ("agent_id", i64), ("task", s), ("backend", s), ("model", s),
                                ("prompt_tokens", i64), ("completion_tokens", i64), ("latency_ms", i64), ("outcome", s),
                                ("fallback_step", pa.int16()), ("error", s)]),
        "interventions": pa.schema([("id", i64), ("created_at", ts), ("user_id", i64), ("action_type", pa.int16()), ("action", s),
                                    ("target_id", i64), ("changes", s), ("options", s), ("reason", s)]),
        "scorecard": pa.schema([("t", ts), ("sim_seconds", f64), ("metric", s), ("key", s), ("value", f64)]),
    }


class TableWriter:
    """One table's file, appended batch by batch."""

    def __init__(self, folder: Path, name: str, schema: Any, fmt: str) -> None:
        self.path = folder / f"{name}.{fmt}"
        self.schema, self.fmt, self.rows = schema, fmt, 0
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self.writer: Any = pq.ParquetWriter(str(self.path), schema, compression="zstd")
        else:
            import pyarrow.csv as pacsv

            self.writer = pacsv.CSVWriter(str(self.path), schema)

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        import pyarrow as pa

        table = pa.Table.from_pylist(rows, schema=self.schema)
        self.writer.write_table(table)
        self.rows += len(rows)

    def close(self) -> int:
        self.writer.close()
        return self.rows


def _ms(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _at(snowflake: int) -> datetime:
    return datetime.fromtimestamp(seconds_of(snowflake), tz=timezone.utc)


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


async def _stream_table(reader: Reader, out: TableWriter, sql: str, args: Sequence[Any], shape: Callable[[Any], dict[str, Any]]) -> None:
    import asyncio

    async for rows in reader.batches(sql, *args):
        await asyncio.to_thread(out.write, [shape(r) for r in rows])


def _answers(nonce: str | None) -> int | None:
    return int(nonce[2:]) if nonce and nonce.startswith("ev") and nonce[2:].isdigit() else None


async def _tables(platform: Platform, reader: Reader, society: Society, window: Window, folder: Path, fmt: str,
                  card: dict[str, Any]) -> dict[str, int]:
    schemas = _schemas()
    counts: dict[str, int] = {}
    g, lo, hi = window.guild_id, window.since_id, window.until_id

    async def table(name: str, sql: str, args: Sequence[Any], shape: Callable[[Any], dict[str, Any]]) -> None:
        out = TableWriter(folder, name, schemas[name], fmt)
        try:
            await _stream_table(reader, out, sql, args, shape)
        finally:
            counts[name] = out.close()

    agents, names = society.agents, society.names
    await table("messages", MESSAGES.replace("SELECT id, channel_id, author_id, content, nonce, referenced_message_id, mentions",
                                             "SELECT id, guild_id, channel_id, author_id, type, content, nonce, referenced_message_id, "
                                             "thread_id, mentions, edited_at, has_attachments"), message_args(society, window),
                lambda r: {"id": r["id"], "created_at": _at(r["id"]), "guild_id": r["guild_id"], "channel_id": r["channel_id"],
                           "author_id": r["author_id"], "author_name": names.get(r["author_id"]), "author_is_agent": r["author_id"] in agents,
                           "type": r["type"], "content": r["content"], "referenced_message_id": r["referenced_message_id"],
                           "answers_message_id": _answers(r["nonce"]), "thread_id": r["thread_id"],
                           "mentions": " ".join(str(x) for x in (r["mentions"] or ())), "edited_at": r["edited_at"],
                           "has_attachments": r["has_attachments"]})
    await table("reactions", "SELECT r.message_id, r.user_id, r.emoji, r.created_at FROM reactions r JOIN messages m ON m.id = r.message_id "
                             "WHERE (m.guild_id = $1 OR m.channel_id = ANY($2::bigint[])) AND m.id >= $3 AND m.id < $4 "
                             "ORDER BY r.message_id, r.created_at, r.user_id, r.emoji", message_args(society, window),
                lambda r: dict(r))
    await table("relationships", "SELECT source_id, target_id, affinity, familiarity, trust, interactions, rating, rated_at, updated_at "
                                 "FROM relationships WHERE guild_id = $1 ORDER BY source_id, target_id", (g,), lambda r: dict(r))
    nodes = TableWriter(folder, "graph_nodes", schemas["graph_nodes"], fmt)
    edges = TableWriter(folder, "graph_edges", schemas["graph_edges"], fmt)
    node_keys = [f for f in schemas["graph_nodes"].names if f not in ("snapshot_id", "created_at")]
    edge_keys = [f for f in schemas["graph_edges"].names if f not in ("snapshot_id", "created_at")]
    try:
        async for rows in reader.batches("SELECT id, created_at, graph FROM graph_snapshots WHERE guild_id = $1 AND id >= $2 AND id < $3 "
                                         "ORDER BY id", g, lo, hi):
            for r in rows:
                graph = _json(r["graph"])
                head = {"snapshot_id": r["id"], "created_at": r["created_at"]}
                nodes.write([{**head, **{k: n.get(k) for k in node_keys}, "id": int(n["id"])} for n in graph.get("nodes", [])])
                edges.write([{**head, **{k: e.get(k) for k in edge_keys}, "source": int(e["source"]), "target": int(e["target"])}
                             for e in graph.get("edges", [])])
    finally:
        counts["graph_nodes"], counts["graph_edges"] = nodes.close(), edges.close()
    await table("llm_calls", "SELECT id, agent_id, task, backend, model, prompt_tokens, completion_tokens, latency_ms, outcome, fallback_step, "
                             "error FROM llm_calls WHERE guild_id = $1 AND id >= $2 AND id < $3 ORDER BY id", (g, lo, hi),
                lambda r: {**dict(r), "created_at": _at(r["id"])})
    from ..actions.audit import A

    labels = {int(a): a.name for a in A}
    await table("interventions", "SELECT id, user_id, action_type, target_id, changes, options, reason FROM audit_log "
                                 "WHERE guild_id = $1 AND id >= $2 AND id < $3 ORDER BY id", (g, lo, hi),
                lambda r: {"id": r["id"], "created_at": _at(r["id"]), "user_id": r["user_id"], "action_type": r["action_type"],
                           "action": labels.get(r["action_type"], str(r["action_type"])), "target_id": r["target_id"],
                           "changes": _json_text(r["changes"]), "options": _json_text(r["options"]), "reason": r["reason"]})
    memories = TableWriter(folder, "memories", schemas["memories"], fmt)
    try:
        await _memories(platform, society, window, memories)
    finally:
        counts["memories"] = memories.close()
    series = TableWriter(folder, "scorecard", schemas["scorecard"], fmt)
    series.write([{**row, "t": datetime.fromisoformat(row["t"].replace("Z", "+00:00"))} for row in timeseries(card)])
    counts["scorecard"] = series.close()
    return counts


async def _memories(platform: Platform, society: Society, window: Window, out: TableWriter) -> None:
    """Each agent's memories created in the window, through `Memories` (agents/memory): metadata only."""
    memories = platform.memory
    for agent_id in sorted(society.agents):
        total = await memories.count(agent_id)
        if not total:
            continue
        found = await memories.recent(agent_id, total, since=window.start)
        out.write([{"agent_id": agent_id, "memory_id": m.id, "kind": getattr(m.kind, "value", str(m.kind)), "importance": float(m.importance),
                    "created_at": _ms(m.created_at)} for m in sorted(found, key=lambda m: (m.created_at, m.id)) if m.created_at < window.end])


# --- the social graph as a file ---


FLOATS = frozenset({"influence", "betweenness", "reputation", "in_strength", "out_strength", "clustering", "rating_mean", "x", "y",
                    "weight", "affinity", "familiarity", "trust"})


def _typed(key: str, value: Any) -> Any:
    """One type per attribute (GEXF and GraphML declare it once, from the first value): JSON
    may give 0 where the rest are 0.25."""
    return float(value) if key in FLOATS and not isinstance(value, bool) else value


def to_networkx(graph: dict[str, Any]) -> nx.DiGraph:
    """A snapshot's JSON (agents/society/graph.py's shape) as a networkx graph with its attributes
    (None values left out: GEXF and GraphML have no null)."""
    out = nx.DiGraph()
    for n in graph.get("nodes", []):
        out.add_node(n["id"], **{("label" if k == "name" else k): _typed(k, v) for k, v in n.items() if k != "id" and v is not None})
    for e in graph.get("edges", []):
        out.add_edge(e["source"], e["target"], **{k: _typed(k, v) for k, v in e.items() if k not in ("source", "target") and v is not None})
    return out


def write_graph(graph: dict[str, Any], path: Path, fmt: str) -> None:
    g = to_networkx(graph)
    if fmt == "gexf":
        nx.write_gexf(g, str(path))
    else:
        nx.write_graphml(g, str(path))


async def _graphs(platform: Platform, reader: Reader, window: Window, folder: Path, fmt: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    last: dict[str, Any] | None = None
    async for rows in reader.batches("SELECT id, graph FROM graph_snapshots WHERE guild_id = $1 AND id >= $2 AND id < $3 ORDER BY id",
                                     window.guild_id, window.since_id, window.until_id):
        for r in rows:
            last = _json(r["graph"])
            write_graph(last, folder / f"graph-{r['id']}.{fmt}", fmt)
            counts[f"graph-{r['id']}"] = len(last.get("nodes", []))
    if last is None:
        from ..actions.graph import compute as graph_now

        last = (await graph_now(platform, window.guild_id)).graph
    write_graph(last, folder / f"graph.{fmt}", fmt)
    counts["graph"] = len(last.get("nodes", []))
    return counts


async def export(platform: Platform, guild_id: int, fmt: str, out: Path, since: int | None = None, until: int | None = None,
                 facts: list[Any] | None = None) -> dict[str, Any]:
    """Writes the export into the folder `out` (created if needed); returns the manifest."""
    check_format(fmt)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    card = await compute_scorecard(platform, guild_id, since, until, facts) if fmt in ("parquet", "csv") else None
    async with snapshot(platform) as reader:
        society = await load_society(reader, guild_id)
        window = Window.of(guild_id, since, until, now=time.time(), founded=society.founded, sim_speed=platform.settings.sim_speed)
        if card is not None:
            # the scorecard's own window (its `until` defaulted to its own now): the same rows
            window = Window(guild_id, int(card["window"]["since_id"]), int(card["window"]["until_id"]), window.sim_speed)
            counts = await _tables(platform, reader, society, window, out, fmt, card)
        else:
            counts = await _graphs(platform, reader, window, out, fmt)
    manifest = {"guild_id": str(guild_id), "society": society.name, "format": fmt, "window": window.describe(), "generated_at": iso(time.time()),
                "files": {name: {"file": f"{name}.{fmt}", "rows" if fmt in ("parquet", "csv") else "nodes": n} for name, n in counts.items()},
                "seconds": round(time.perf_counter() - started, 3)}
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest


# --- a zip, streamed ---


class _Sink(io.RawIOBase):
    """An unseekable file for zipfile that hands out what was written so far."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.offset = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.buffer += data
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def take(self) -> bytes:
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


def zip_folder(folder: Path, *, remove: bool = False) -> Iterator[bytes]:
    """The folder's files as one zip, produced chunk by chunk (Parquet stored, the rest deflated);
    `remove` deletes the folder once the last chunk is out (or the reader went away)."""
    sink = _Sink()
    try:
        with zipfile.ZipFile(sink, "w") as archive:
            for path in sorted(folder.iterdir()):
                method = zipfile.ZIP_STORED if path.suffix == ".parquet" else zipfile.ZIP_DEFLATED
                info = zipfile.ZipInfo(path.name, date_time=time.gmtime(path.stat().st_mtime)[:6])
                info.compress_type = method
                with path.open("rb") as src, archive.open(info, "w") as dst:
                    while chunk := src.read(ZIP_CHUNK):
                        dst.write(chunk)
                        if len(sink.buffer) >= ZIP_CHUNK:
                            yield sink.take()
                yield sink.take()
        yield sink.take()
    finally:
        if remove:
            shutil.rmtree(folder, ignore_errors=True)


async def export_zip(platform: Platform, guild_id: int, fmt: str, since: int | None, until: int | None,
                     facts: list[Any] | None = None) -> tuple[str, Iterator[bytes]]:
    """Exports into a temporary folder, then the zip's name and its chunks (the folder goes with the last one)."""
    folder = Path(tempfile.mkdtemp(prefix="townsquare-export-"))
    try:
        manifest = await export(platform, guild_id, fmt, folder, since, until, facts)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    stamp = manifest["window"]["until"].replace(":", "").replace("-", "")[:15]
    return f"townsquare-{guild_id}-{stamp}-{fmt}.zip", zip_folder(folder, remove=True)

