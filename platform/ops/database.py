"""PostgreSQL's side of a backup, without `pg_dump`: every table is copied out (COPY ... TO, text
format) inside one REPEATABLE READ, READ ONLY transaction, so the tables, the schema revision and
the sequences all describe the same moment, and no client binary has to match the server's version
(the embedded PostgreSQL and a machine's own usually differ). Restore copies them back in, parents
before children (foreign keys are checked as usual), then moves the sequences past what was loaded.

Tables, columns, keys and sequences are read from the catalog of the installation's schema, so a
new migration needs no change here. Generated columns (`messages.search_vector`) are left out:
PostgreSQL recomputes them on load."""

from __future__ import annotations

import graphlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url

from ..core.config import Settings

VERSION_TABLE = "alembic_version"
ACCOUNT_TABLES = frozenset({"users", "tokens", "audit_log"})  # what a fresh installation already holds (its admin)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def asyncpg_dsn(database_url: str) -> str:
    url = make_url(database_url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def connect(database_url: str, settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A plain asyncpg connection in the installation's schema (COPY streams are asyncpg's)."""
    server_settings = {"application_name": "townsquare-backup", "jit": "off"}
    if settings.database_schema:
        server_settings["search_path"] = settings.database_schema
    conn = await asyncpg.connect(asyncpg_dsn(database_url), server_settings=server_settings)
    try:
        yield conn
    finally:
        await conn.close()


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]


_TABLES = """
SELECT c.oid, c.relname FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> $1
"""
_COLUMNS = """
SELECT attrelid, attname FROM pg_attribute
WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
ORDER BY attrelid, attnum
"""
_FOREIGN_KEYS = "SELECT conrelid, confrelid FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
_SEQUENCES = """
SELECT s.relname AS sequence, t.relname AS "table", a.attname AS "column"
FROM pg_class s
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S' AND s.relnamespace = current_schema()::regnamespace
ORDER BY 1
"""


async def tables(conn: asyncpg.Connection) -> list[Table]:
    """Every table of the schema (but Alembic's), parents before children, ties by name."""
    rows = await conn.fetch(_TABLES, VERSION_TABLE)
    names = {r["oid"]: r["relname"] for r in rows}
    columns: dict[int, list[str]] = {oid: [] for oid in names}
    for r in await conn.fetch(_COLUMNS, list(names)):
        columns[r["attrelid"]].append(r["attname"])
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter({names[oid]: set() for oid in names})
    for r in await conn.fetch(_FOREIGN_KEYS):
        child, parent = names.get(r["conrelid"]), names.get(r["confrelid"])
        if child and parent and child != parent:  # a self-reference is checked at the end of the COPY
            sorter.add(child, parent)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    by_name = {names[oid]: tuple(columns[oid]) for oid in names}
    return [Table(name, by_name[name]) for name in order]


async def revision(conn: asyncpg.Connection) -> str | None:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", quote(VERSION_TABLE))
    return await conn.fetchval(f"SELECT version_num FROM {quote(VERSION_TABLE)} LIMIT 1") if exists else None


async def sequences(conn: asyncpg.Connection) -> dict[str, dict[str, Any]]:
    out = {}
    for r in await conn.fetch(_SEQUENCES):
        last = await conn.fetchval(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {quote(r['sequence'])}")
        out[r["sequence"]] = {"table": r["table"], "column": r["column"], "value": int(last)}
    return out


def _copied(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1]) if status.startswith("COPY") else 0


async def copy_out(conn: asyncpg.Connection, table: Table, path: Path) -> int:
    """Writes the table's rows to `path` (PostgreSQL's text COPY format); returns the row count."""
    return _copied(await conn.copy_from_table(table.name, columns=list(table.columns), output=str(path), format="text"))


async def copy_in(conn: asyncpg.Connection, table: Table, source: Any) -> int:
    """`source`: a path or a binary file object of a `copy_out`."""
    return _copied(await conn.copy_to_table(table.name, columns=list(table.columns), source=source, format="text"))


async def restore_sequences(conn: asyncpg.Connection, saved: dict[str, dict[str, Any]]) -> None:
    """Each sequence continues after both its saved value and the largest loaded id."""
    for name, seq in (await sequences(conn)).items():
        top = await conn.fetchval(f"SELECT max({quote(seq['column'])}) FROM {quote(seq['table'])}")
        value = max(int(top or 0), int(saved.get(name, {}).get("value", 0)))
        if value > 0:
            await conn.execute("SELECT setval($1::regclass, $2, true)", quote(name), value)
        else:
            await conn.execute("SELECT setval($1::regclass, 1, false)", quote(name))


async def occupied(conn: asyncpg.Connection) -> list[str]:
    """The tables holding rows (an empty installation has none, or only its accounts)."""
    found = []
    for table in await tables(conn):
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quote(table.name)})"):
            found.append(table.name)
    return found


async def wipe(conn: asyncpg.Connection) -> None:
    names = [t.name for t in await tables(conn)]
    if names:
        await conn.execute(f"TRUNCATE {', '.join(quote(n) for n in names)} RESTART IDENTITY CASCADE")
