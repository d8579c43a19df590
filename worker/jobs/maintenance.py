"""rq jobs that keep the society's records bounded. rq runs plain functions in its own process;
each job opens the platform for its duration."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from ...platform.core.config import get_settings


async def _prune(keep_days: float) -> dict[str, int]:
    from ...platform.api.app import build_platform, close_platform
    from ...platform.services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)  # the rq worker's environment names the services (`up` passes them)
    platform = await build_platform(settings, services.database_url, services.redis_url)
    try:
        async with platform.transaction() as tx:
            calls = (await tx.conn.execute(text("DELETE FROM llm_calls WHERE created_at < now() - make_interval(secs => :s)"),
                                           {"s": keep_days * 86400})).rowcount
            turns = (await tx.conn.execute(text("DELETE FROM agent_turns WHERE created_at < now() - make_interval(secs => :s)"),
                                           {"s": keep_days * 86400})).rowcount
    finally:
        await close_platform(platform)
    return {"llm_calls": calls, "agent_turns": turns}


def prune_records(keep_days: float = 30.0) -> dict[str, int]:
    """Deletes LLM-call and turn records older than `keep_days`."""
    return asyncio.run(_prune(keep_days))
