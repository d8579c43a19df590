"""One way for a command to work on the installation: build the platform on the configured (or
embedded) services, run the command's coroutine on it, close it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def on_platform(work: Callable[[Any], Awaitable[T]]) -> T:
    """`work(platform)`, run to its end on a platform of its own."""
    from ..core.config import get_settings
    from ..services.embedded import resolve_services

    settings = get_settings()
    services = resolve_services(settings)

    async def main() -> T:
        from ..api.app import build_platform, close_platform

        platform = await build_platform(settings, services.database_url, services.redis_url)
        try:
            return await work(platform)
        finally:
            await close_platform(platform)

    return asyncio.run(main())
