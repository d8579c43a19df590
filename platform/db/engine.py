"""The async engine and the one transaction helper the action layer uses."""

from __future__ import annotations

import weakref
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    server_settings = {"jit": "off", "application_name": "townsquare"}
    if schema:
        server_settings["search_path"] = schema
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_pre_ping=False,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": server_settings},
    )
    QueryCounter.attach(engine)
    return engine


_COUNTERS: "weakref.WeakKeyDictionary[Any, QueryCounter]" = weakref.WeakKeyDictionary()


class QueryCounter:
    """Counts statements per engine; the hot-path tests assert on it."""

    def __init__(self) -> None:
        self.count = 0

    @classmethod
    def attach(cls, engine: AsyncEngine) -> None:
        counter = cls()
        _COUNTERS[engine.sync_engine] = counter

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _count(*_: Any) -> None:
            counter.count += 1

    @staticmethod
    def of(engine: AsyncEngine) -> "QueryCounter":
        return _COUNTERS[engine.sync_engine]
