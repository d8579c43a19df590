"""The admin dashboard's System page: `GET /api/v10/townsquare/system` (instance administrators).

Per Townsquare process (this server, and the processes it started: the agent worker, rq
worker, model server and Chroma under `up`; every worker of `serve --workers N`): CPU %, RSS,
open files. Then the data folder's disk, the event stream and its consumer groups, the rq
queue, and the /ready checks."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
from fastapi import APIRouter, Request

from ...actions import agents
from ..deps import Me, PlatformDep
from ..health import readiness
from ..metrics import stream_figures

router = APIRouter(prefix="/api/v10/townsquare")

CPU_SAMPLE_SECONDS = 0.25  # psutil's CPU % compares two readings: this far apart
FOLDER_SCAN_LIMIT = 200_000  # directory entries walked for the data folder's size (a huge memory store stops there)
FOLDER_CACHE_SECONDS = 60.0  # the walk is the page's one slow part: reused for a minute
_folder_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def _role(cmdline: list[str]) -> str:
    """What a process is, from its command line (`python -m townsquare.platform.cli worker`, ...)."""
    for i, arg in enumerate(cmdline):
        if arg == "townsquare.platform.cli" or arg.endswith("/townsquare") or arg == "townsquare":
            rest = [a for a in cmdline[i + 1:] if not a.startswith("-")]
            return " ".join(rest[:2]) if rest[:1] in (["model"], ["memory"], ["bot"]) else (rest[0] if rest else "townsquare")
    name = os.path.basename(cmdline[0]) if cmdline else ""
    if "postgres" in name:
        return "postgres"
    if "redis-server" in name:
        return "redis"
    if any("multiprocessing.resource_tracker" in a for a in cmdline):
        return "resource tracker"  # multiprocessing's helper beside `serve --workers N`
    if any("multiprocessing" in a for a in cmdline):
        return "server worker"  # uvicorn's worker processes of `serve --workers N`
    return name or "unknown"


def _root() -> psutil.Process:
    """This process, or the `townsquare serve --workers N` master whose worker we are."""
    me = psutil.Process()
    try:
        parent = me.parent()
        cmd = parent.cmdline() if parent is not None else []
    except psutil.Error:
        return me
    if parent is not None and "serve" in cmd and _role(cmd) == "serve":
        return parent
    return me


def _processes() -> list[dict[str, Any]]:
    root = _root()
    procs = [root, *root.children(recursive=True)]
    for p in procs:  # the first reading; the second, CPU_SAMPLE_SECONDS later, gives the %
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(CPU_SAMPLE_SECONDS)
    me, out = os.getpid(), []
    for p in procs:
        try:
            with p.oneshot():
                cmd = p.cmdline()
                io = p.io_counters() if hasattr(p, "io_counters") else None  # bytes this process read/wrote on disk
                out.append({"pid": p.pid, "parent_pid": p.ppid(), "role": "server" if p.pid == me else _role(cmd),
                            "cpu_percent": round(p.cpu_percent(None), 1), "rss_bytes": p.memory_info().rss,
                            "open_fds": p.num_fds() if hasattr(p, "num_fds") else None, "threads": p.num_threads(),
                            "disk_read_bytes": io.read_bytes if io else None, "disk_write_bytes": io.write_bytes if io else None,
                            "started_at": round(p.create_time(), 3), "this_process": p.pid == me})
        except psutil.Error:  # it ended meanwhile, or is not ours to inspect
            continue
    return out


def _folder_size(path: Path) -> dict[str, Any]:
    """Bytes under the data folder, walked without following links, up to FOLDER_SCAN_LIMIT entries."""
    total, seen, stack, complete = 0, 0, [str(path)], True
    while stack and complete:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    if seen > FOLDER_SCAN_LIMIT:
                        complete = False
                        break
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return {"data_bytes": total, "complete": complete}


def _disk(path: Path) -> dict[str, Any]:
    usage = shutil.disk_usage(path)
    key, now = str(path), time.monotonic()
    cached = _folder_cache.get(key)
    if cached is None or now - cached[0] > FOLDER_CACHE_SECONDS:
        cached = _folder_cache[key] = (now, _folder_size(path))
    return {"path": key, "total_bytes": usage.total, "used_bytes": usage.used, "free_bytes": usage.free,
            "used_percent": round(usage.used / usage.total * 100, 1) if usage.total else None, **cached[1]}


@router.get("/system")
async def system(request: Request, me: Me, platform: PlatformDep) -> dict[str, Any]:
    agents.require_admin(me)
    data_dir = platform.settings.resolved_data_dir()
    (_, ready), processes, disk, figures = await asyncio.gather(
        readiness(platform), asyncio.to_thread(_processes), asyncio.to_thread(_disk, data_dir), _figures(platform))
    hub = getattr(request.app.state, "hub", None)
    return {"processes": processes, "disk": disk, "stream": figures["stream"], "queues": figures["queues"],
            "gateway_sessions": len(hub.sessions) if hub is not None else 0, "ready": ready}


async def _figures(platform: Any) -> dict[str, Any]:
    """The stream and queues, or their absence when Redis does not answer (the page still shows the rest)."""
    try:
        return await asyncio.wait_for(stream_figures(platform.redis, platform.settings),
                                      platform.settings.ready_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - shown on the page; /ready says more
        return {"stream": {"error": type(exc).__name__}, "queues": {"error": type(exc).__name__}}
