"""Runs the Alembic migrations in `migrations/` (the `townsquare.migrations` package)."""

from __future__ import annotations

import asyncio
from importlib.util import find_spec

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str, schema: str | None = None) -> Config:
    cfg = Config()
    spec = find_spec("townsquare.migrations")
    assert spec is not None and spec.submodule_search_locations, "townsquare.migrations is not installed"
    cfg.set_main_option("script_location", list(spec.submodule_search_locations)[0])
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def _in_thread(fn, *args) -> None:  # type: ignore[no-untyped-def]
    """env.py runs its own event loop; keep it off any loop already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)
        return
    import threading

    error: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if error:
        raise error[0]


def upgrade(database_url: str, schema: str | None = None, revision: str = "head") -> None:
    _in_thread(command.upgrade, alembic_config(database_url, schema), revision)


def downgrade(database_url: str, schema: str | None = None, revision: str = "base") -> None:
    _in_thread(command.downgrade, alembic_config(database_url, schema), revision)
