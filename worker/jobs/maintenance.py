"""rq jobs that keep the society's records bounded. rq runs plain functions in its own process;
each job opens the platform for its duration."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from ...platform.core.config import get_settings


async def _prune(database_url: str, redis_url: str, keep_days: float) -> dict[str, int]:
    from ...platform.api.app import build_platform, close_platform

    platform = await build_platform(get_settings(), database_url, redis_url)
    try:
        async with platform.transaction() as tx:
            calls = (await tx.conn.execute(text("DELETE FROM llm_calls WHERE created_at < now() - make_interval(secs => :s)"),
                                           {"s": keep_days * 86400})).rowcount
            turns = (await tx.conn.execute(text("DELETE FROM agent_turns WHERE created_at < now() - make_interval(secs => :s)"),
                                           {"s": keep_days * 86400})).rowcount
    finally:
        await close_platform(platform)
    return {"llm_calls": calls, "agent_turns": turns}


def prune_records(database_url: str, redis_url: str, keep_days: float = 30.0) -> dict[str, int]:
    """Deletes LLM-call and turn records older than `keep_days`."""
    return asyncio.run(_prune(database_url, redis_url, keep_days))
