"""The HTTP application: builds the runtime (database, Redis, object store, event publisher)
in its lifespan and mounts the REST routes under /api/v10."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import BlockingConnectionPool, Redis

from ..actions.context import Platform
from ..core.config import Settings
from ..core.heap import freeze_startup_heap, thaw_heap
from ..core.logging import setup_logging
from ..db.engine import make_engine
from ..events.publisher import EventPublisher
from ..gateway import routes as gateway_routes
from ..gateway.hub import GatewayHub
from ..services.objectstore import make_object_store
from . import errors, health, metrics, openapi
from .hotroutes import HotRoutes
from .middleware import EdgeMiddleware
from .ratelimit import RateLimiter
from .responses import FastJSONResponse
from .routes import channels, graph, guilds, messages, system, townsquare, users
from .routes import analytics as analytics_routes
from .routes import backups as backup_routes
from .routes import dashboard as dashboard_routes
from ...webui import pages as webui_pages


async def build_platform(settings: Settings, database_url: str, redis_url: str) -> Platform:
    engine = make_engine(database_url, schema=settings.database_schema, pool_size=settings.database_pool_size)
    # A blocking pool: a burst waits for a free connection instead of failing.
    redis = Redis(connection_pool=BlockingConnectionPool.from_url(redis_url, max_connections=64, timeout=10))
    publisher = EventPublisher(database_url, redis, prefix=settings.redis_prefix, maxlen=settings.event_stream_maxlen,
                               poll_seconds=settings.event_publish_poll_seconds, schema=settings.database_schema)
    return Platform(settings=settings, engine=engine, redis=redis, store=make_object_store(settings), publisher=publisher)


async def close_platform(platform: Platform) -> None:
    if "brain" in platform.__dict__:  # made on first use (an interview): its HTTP clients close with the platform
        await platform.brain.close()
    await platform.publisher.stop()
    await platform.redis.aclose()
    await platform.engine.dispose()


def create_app(settings: Settings, *, database_url: str, redis_url: str) -> FastAPI:
    """`database_url` and `redis_url` are resolved by the caller (embedded or configured)."""
    setup_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        platform = await build_platform(settings, database_url, redis_url)
        app.state.platform = platform
        app.state.ratelimiter = RateLimiter(platform.redis, settings)
        hub = GatewayHub(platform)
        app.state.hub = hub
        await platform.publisher.start()
        await hub.start()
        freeze_startup_heap()
        try:
            yield
        finally:
            thaw_heap()
            await hub.stop()
            await close_platform(platform)

    app = FastAPI(title="Townsquare", version="0.1.0", lifespan=lifespan, default_response_class=FastJSONResponse,
                  openapi_url="/api/v10/openapi.json", docs_url=None, redoc_url=None)
    errors.install(app)
    documented = errors.DOCUMENTED_ERRORS  # the 4xx any API route may answer, in the OpenAPI description
    for module in (users, guilds, channels, messages, townsquare, graph, system):
        app.include_router(module.router, responses=documented)
    app.include_router(backup_routes.router, responses=documented)
    app.include_router(dashboard_routes.router, responses=documented)  # the admin dashboard's reads
    app.include_router(analytics_routes.router, responses=documented)  # scorecards and exports
    app.include_router(gateway_routes.router, responses=documented)
    openapi.install(app)
    webui_pages.mount(app)

    app.include_router(health.router)  # /health, /ready
    app.include_router(metrics.router)  # /metrics
    app.state.http_metrics = metrics.HttpMetrics()
    app.add_middleware(HotRoutes)  # inside EdgeMiddleware: limits, request ids and access lines apply
    app.add_middleware(EdgeMiddleware, settings=settings, metrics=app.state.http_metrics)
    return app


def app_from_env() -> FastAPI:
    """For `townsquare serve --workers N`: each worker builds its app from the environment."""
    return create_app(Settings(), database_url=os.environ["DATABASE_URL"], redis_url=os.environ["REDIS_URL"])
