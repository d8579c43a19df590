"""Container health probes of the compose stack (`python -m townsquare.bundles.offline.probe KIND`):

    http URL     the URL answers 200 (the server's /ready, the memory server's heartbeat)
    worker       this container's agent worker read the event stream in the last 30 s
                 (its consumer in the `agents` group: Redis counts every XREADGROUP as activity)
    rq-worker    this container's rq worker sent a heartbeat in the last 120 s

Exit 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import datetime as dt
import socket
import sys
import urllib.request

WORKER_IDLE_MS = 30_000
RQ_HEARTBEAT_SECONDS = 120


def http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a URL of the stack
            return None if response.status == 200 else f"{url} answered {response.status}"
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
        return f"{url}: {exc}"


def _redis():  # type: ignore[no-untyped-def]
    from redis import Redis

    from ...platform.core.config import get_settings

    settings = get_settings()
    if not settings.redis_url:
        raise SystemExit("REDIS_URL is not set")
    return settings, Redis.from_url(settings.redis_url, socket_timeout=5)


def worker() -> str | None:
    from ...platform.events.publisher import stream_key
    from ...worker.runtime.worker import GROUP

    settings, redis = _redis()
    host = socket.gethostname()
    consumers = redis.xinfo_consumers(stream_key(settings.redis_prefix), GROUP)
    mine = [c for c in consumers if str(c["name"], "utf-8", "replace").startswith(f"{host}-")]
    if not mine:
        return f"no consumer of {host} in the {GROUP} group"
    idle = min(int(c["idle"]) for c in mine)
    return None if idle < WORKER_IDLE_MS else f"the worker has not read the stream for {idle} ms"


def rq_worker() -> str | None:
    from rq import Worker

    _, redis = _redis()
    host = socket.gethostname()
    now = dt.datetime.now(dt.timezone.utc)
    for w in Worker.all(connection=redis):
        beat = w.last_heartbeat
        if w.hostname == host and beat is not None:
            beat = beat if beat.tzinfo else beat.replace(tzinfo=dt.timezone.utc)
            if (now - beat).total_seconds() < RQ_HEARTBEAT_SECONDS:
                return None
    return f"no rq worker of {host} with a recent heartbeat"


PROBES = {"http": http, "worker": worker, "rq-worker": rq_worker}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PROBES or (argv[0] == "http") != (len(argv) == 2):
        print(__doc__, file=sys.stderr)
        return 2
    problem = PROBES[argv[0]](*argv[1:])
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
