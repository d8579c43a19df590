"""The uvicorn server Townsquare runs: a signal ends it with exit status 0 (uvicorn re-raises
the signal after its graceful shutdown), and gateway sessions are told to RECONNECT before
uvicorn closes their sockets, so they resume elsewhere without loss."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn

from ..core.config import Settings
from ..gateway.wire import GatewayWebSocketProtocol


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How every Townsquare HTTP server runs under uvicorn (serve, serve --workers, the tests'
    and benchmarks' servers): one set of options, so what is measured is what is deployed."""
    return {
        "http": "httptools",
        "ws": GatewayWebSocketProtocol,  # uvicorn's sans-I/O protocol, plus direct frame writes
        "ws_per_message_deflate": False,  # gateway clients that want compression ask for zlib-stream
        "log_config": None, "access_log": False, "timeout_graceful_shutdown": 10,
        # the client address (rate limits, the security log) comes from these proxies' headers
        "proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips,
    }


class TownsquareServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - serve() always runs in a loop
            yield
            return
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
                installed.append(sig)
            except (ValueError, RuntimeError):  # not the main thread (tests run servers in threads)
                pass
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def shutdown(self, sockets: Any = None) -> None:
        """New connections are refused first (a told session must not come back here), then
        every gateway session is sent RECONNECT and closed resumably (4000) by the hub, and
        only then does uvicorn close what is left (a socket still in its handshake or before
        IDENTIFY gets RECONNECT from the protocol, wire.py)."""
        for server in self.servers:
            server.close()
        hub = _find_hub(self.config.loaded_app)  # under uvicorn's middleware (proxy headers): no `state` of its own
        if hub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(hub.stop(), 10)
        await super().shutdown(sockets)


def _find_hub(app: Any) -> Any:
    """The FastAPI app sits under uvicorn's middleware wrappers."""
    for _ in range(10):
        state = getattr(app, "state", None)
        if state is not None and getattr(state, "_state", {}).get("hub") is not None:
            return state.hub
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None
