"""Liveness (`/health`) and readiness (`/ready`): PostgreSQL, Redis, the object store, the LLM
endpoint(s) the agents use and Chroma, each with its state and latency, probed concurrently,
each under its own timeout (a hung service makes its check a `timeout`, never hangs /ready).

Which checks are required (a failure makes /ready 503):
- postgres, redis, object_store: always; the platform cannot serve without them.
- llm: when an endpoint is configured (OLLAMA_HOST or a routing file); ready when at least
  one backend of the default chain answers (the fallback chain can serve). Unconfigured, the
  agents use the bundled model that `up` / `model serve` start beside the server: it is
  probed and reported, but the chat platform serves humans without it (it loads slowly).
- chroma: when CHROMA_URL is set (its `/api/v2/heartbeat`). Unset, the workers open Chroma
  embedded on the data folder: reported as `embedded`, nothing to probe from here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Request
from sqlalchemy import text

from ..actions.context import Platform
from ..core.config import Settings
from .responses import FastJSONResponse

router = APIRouter()


@dataclass
class Check:
    name: str
    required: bool
    probe: Callable[[], Awaitable[dict[str, Any] | None]] | None  # None: nothing to probe (state given)
    state: str = "ok"


async def _timed(check: Check, timeout: float) -> dict[str, Any]:
    out: dict[str, Any] = {"status": check.state, "required": check.required}
    if check.probe is None:
        return out
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check.probe(), timeout)
        out["status"] = "ok"
        if detail:
            out.update(detail)
    except TimeoutError:
        out["status"] = "timeout"
    except Exception as exc:  # noqa: BLE001 - reported (by type only: messages may hold hosts or credentials)
        out["status"] = "error"
        out["error"] = type(exc).__name__
        out.update(getattr(exc, "detail", None) or {})
    out["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out


async def _http_ok(client: httpx.AsyncClient, url: str) -> None:
    r = await client.get(url)
    if r.status_code >= 400:
        raise _BadStatus(r.status_code)


class _BadStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")


def _llm_check(settings: Settings, client: httpx.AsyncClient, timeout: float) -> Check:
    from ...agents.brain.routing import load_routing

    required = bool(settings.ollama_host or settings.routing_file)
    try:
        routing = load_routing(settings.routing_file, settings.ollama_host or f"http://127.0.0.1:{settings.model_port}")
    except Exception:  # noqa: BLE001 - an unreadable routing file is this check's failure
        async def invalid() -> dict[str, Any]:
            raise InvalidRoutingFile()
        return Check("llm", required, invalid)

    async def probe() -> dict[str, Any]:
        # liveness only: Ollama's /api/tags (the bundled server serves it too), an OpenAI server's /models
        names = list(routing.backends)
        urls = [spec.host.rstrip("/") + ("/api/tags" if spec.kind == "ollama" else "/models") for spec in routing.backends.values()]
        # each backend under a shorter timeout than the check's, so that one hung backend is named
        results = await asyncio.gather(*(asyncio.wait_for(_http_ok(client, u), timeout * 0.8) for u in urls), return_exceptions=True)
        states = {n: "ok" if r is None else ("timeout" if isinstance(r, TimeoutError) else "error") for n, r in zip(names, results)}
        if not any(states[n] == "ok" for n in routing.routes.default):
            raise NoBackendAnswers({"backends": states})
        return {"backends": states}

    return Check("llm", required, probe)


class NoBackendAnswers(Exception):
    """No backend of the default chain answered; `detail` holds each backend's state."""

    def __init__(self, detail: dict[str, Any]) -> None:
        super().__init__("no backend of the default chain answered")
        self.detail = detail


class InvalidRoutingFile(Exception):
    """The routing file could not be read or validated."""


def checks(platform: Platform, client: httpx.AsyncClient, timeout: float) -> list[Check]:
    settings = platform.settings

    async def postgres() -> None:
        async with platform.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await platform.redis.ping()

    async def object_store() -> None:
        await platform.store.check()

    out = [Check("postgres", True, postgres), Check("redis", True, redis), Check("object_store", True, object_store),
           _llm_check(settings, client, timeout)]
    if settings.chroma_url:
        out.append(Check("chroma", True, lambda: _http_ok(client, settings.chroma_url.rstrip("/") + "/api/v2/heartbeat")))  # type: ignore[union-attr]
    else:
        out.append(Check("chroma", False, None, state="embedded"))
    return out


async def readiness(platform: Platform) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body): 503 when a required check failed; `degraded` when only an optional one did."""
    timeout = platform.settings.ready_timeout_seconds
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        todo = checks(platform, client, timeout)
        results = await asyncio.gather(*(_timed(c, timeout) for c in todo))
    by_name = dict(zip((c.name for c in todo), results))
    failed_required = any(r["required"] and r["status"] != "ok" for r in results)
    failed_optional = any(not r["required"] and r["status"] in ("error", "timeout") for r in results)
    status = "unavailable" if failed_required else "degraded" if failed_optional else "ok"
    return (503 if failed_required else 200), {"status": status, "checks": by_name}


@router.get("/health", include_in_schema=False)
async def health() -> dict[str, Any]:
    """Liveness: the process serves HTTP (dependencies are /ready's business)."""
    return {"status": "ok"}


@router.get("/ready", include_in_schema=False)
async def ready(request: Request) -> FastJSONResponse:
    status, body = await readiness(request.app.state.platform)
    return FastJSONResponse(body, status_code=status)
