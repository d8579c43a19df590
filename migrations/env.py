"""Alembic environment: async engine, optional schema (tests run each session in its own)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from townsquare.platform.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = config.get_main_option("sqlalchemy.url")
    schema = config.attributes.get("schema")
    server_settings = {"search_path": schema} if schema else {}
    engine = create_async_engine(url, connect_args={"server_settings": server_settings})
    async with engine.connect() as conn:
        if schema:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.commit()
        # several server instances may start at once: one migrates, the others wait
        await conn.execute(text("SELECT pg_advisory_lock(7473001)"))
        try:
            await conn.run_sync(_run)
            await conn.commit()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(7473001)"))
            await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
