"""Statements run on the asyncpg connection under a SQLAlchemy one, for the hottest reads.

SQLAlchemy's async layer costs about as much CPU as a 50-row page fetch itself (greenlet hop,
statement compilation and caching, a Python object per row). On an autocommit connection no
BEGIN is pending, so the driver connection can be used directly; inside a transaction the
statement goes through SQLAlchemy, which issues the BEGIN it owes first. Statements are written
with SQLAlchemy's `:name` parameters in both cases, so one text serves both ways.
"""

from __future__ import annotations

import re
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .engine import QueryCounter

_PARAM = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """`:name` parameters as asyncpg's `$n`, and the names in their order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


async def fetch_rows(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> list[Any]:
    """Rows with attribute access, by the shortest way the connection's state allows."""
    if conn.sync_connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        return list((await conn.execute(text(sql), params)).all())
    numbered, names = _numbered(sql)
    driver = (await conn.get_raw_connection()).driver_connection
    QueryCounter.of(conn.engine).count += 1
    # attribute access as SQLAlchemy rows offer it; a namespace reads at C speed (a __getattr__
    # wrapper costs an AttributeError per access, twice the shaping of a page)
    return [SimpleNamespace(**r) for r in await driver.fetch(numbered, *(params[n] for n in names))]
