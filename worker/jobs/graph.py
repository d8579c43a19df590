"""rq job: snapshots of the societies' social graph (the dashboard's timeline), taken on the
worker's schedule and on demand (`POST /api/v10/townsquare/graph/snapshots`), and the pruning
that keeps the timeline bounded. Like every job it opens the platform for its duration."""

from __future__ import annotations

import asyncio
from typing import Any

from ...platform.core.config import get_settings


async def _snapshot(guild_id: int | None, reason: str, keep_days: float, keep_max: int) -> dict[str, Any]:
    from ...platform.actions.graph import prune_snapshots, take_snapshots
    from ...platform.api.app import build_platform, close_platform
    from ...platform.services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)  # the rq worker's environment names the services (`up` passes them)
    platform = await build_platform(settings, services.database_url, services.redis_url)
    try:
        taken = await take_snapshots(platform, guild_id, reason)
        pruned = await prune_snapshots(platform, keep_days, keep_max)
    finally:
        await close_platform(platform)
    return {"snapshots": [s["id"] for s in taken], "pruned": pruned}


def snapshot_graph(guild_id: int | None = None, reason: str = "schedule", keep_days: float = 14.0,
                   keep_max: int = 1000) -> dict[str, Any]:
    """Snapshots one guild's graph (None: every society), then drops snapshots older than
    `keep_days` or beyond the newest `keep_max` of a guild. Returns the new snapshots' ids."""
    if reason not in ("schedule", "manual"):
        raise ValueError("reason must be 'schedule' or 'manual'")
    return asyncio.run(_snapshot(guild_id, reason, keep_days, keep_max))
