"""rq job: the scheduled backup. The worker's tick leader enqueues it often (every few minutes);
the job itself decides whether one is due (no scheduled backup younger than
`backup_every_hours` in the folder), so restarts neither skip nor double a backup, and then
keeps the newest `backup_keep` scheduled backups. Two runs at once: the second finds the
backup lock taken and does nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from ...platform.core.config import Settings, get_settings


async def run_scheduled(settings: Settings, database_url: str, redis_url: str, now: datetime) -> dict[str, Any]:
    from ...platform.api.app import build_platform, close_platform
    from ...platform.ops import archive
    from ...platform.ops.backup import Installation, create_backup
    from ...platform.ops.errors import BackupBusy

    if not archive.due(settings, now):
        return {"created": None, "pruned": archive.prune(settings, settings.backup_keep)}
    platform = await build_platform(settings, database_url, redis_url)
    try:
        made = await create_backup(Installation.of(platform), kind="scheduled", now=now)
    except BackupBusy:
        return {"created": None, "pruned": []}
    finally:
        await close_platform(platform)
    return {"created": made["name"], "pruned": archive.prune(settings, settings.backup_keep)}


def scheduled_backup() -> dict[str, Any]:
    """Backs up if one is due, then prunes old scheduled backups."""
    from ...platform.services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)  # the rq worker's environment names the services (`up` passes them)
    return asyncio.run(run_scheduled(settings, services.database_url, services.redis_url, datetime.now(timezone.utc)))
