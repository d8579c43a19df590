"""Process entry points: `townsquare worker` and `townsquare rq-worker`."""

from __future__ import annotations

import asyncio
import logging
import signal

from ...platform.core.config import Settings
from ...platform.core.logging import setup_logging

log = logging.getLogger("townsquare.worker")


async def run_worker(settings: Settings, database_url: str, redis_url: str, *, api_url: str | None = None) -> None:
    """Runs one agent worker until SIGINT/SIGTERM, then drains its turns in flight."""
    from ...platform.api.app import build_platform, close_platform
    from .relevance import embedding_relevance, embedding_text_relevance
    from .worker import AgentWorker

    setup_logging(settings)
    platform = await build_platform(settings, database_url, redis_url)
    worker = AgentWorker(settings, platform, api_url=api_url, relevance=embedding_relevance(),
                         text_relevance=embedding_text_relevance(), enqueue=rq_enqueuer(settings, redis_url))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    try:
        await stop.wait()
    finally:
        log.info("worker stopping: draining turns in flight")
        await worker.stop()
        await close_platform(platform)


def queue_name(settings: Settings) -> str:
    """One rq queue per instance (its Redis prefix), so stacks sharing a Redis never run each other's jobs."""
    return f"{settings.redis_prefix}jobs"


def rq_enqueuer(settings: Settings, redis_url: str):  # type: ignore[no-untyped-def]
    """Enqueues a job by its import path. Jobs find the services through the environment (never
    through their arguments, which rq stores and logs)."""
    from redis import Redis
    from rq import Queue

    queue = Queue(queue_name(settings), connection=Redis.from_url(redis_url))

    def enqueue(path: str, **kwargs: object) -> None:
        queue.enqueue(path, **kwargs, job_timeout=600, result_ttl=86400)

    return enqueue


def run_rq_worker(settings: Settings, redis_url: str) -> None:
    """rq's worker for slow background jobs (worker/jobs)."""
    from redis import Redis
    from rq import Queue, Worker

    setup_logging(settings)
    connection = Redis.from_url(redis_url)
    Worker([Queue(queue_name(settings), connection=connection)], connection=connection).work(with_scheduler=False)
