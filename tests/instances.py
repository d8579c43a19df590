"""Townsquare server instances as real processes (for kill -9 and multi-instance tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from townsquare.platform.core.config import Settings

from .helpers import wait_healthy


class Instance:
    def __init__(self, settings: Settings, database_url: str, redis_url: str, port: int, data_dir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "", "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix,
                    "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_DATA_DIR": str(data_dir),
                    "TOWNSQUARE_RATE_LIMIT_SCALE": "1000", "TOWNSQUARE_LOG_LEVEL": "WARNING",
                    "TOWNSQUARE_EVENT_PUBLISH_POLL_SECONDS": "0.05"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> "Instance":
        self.proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "serve", "--no-migrate"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_healthy(self.url, self.proc, timeout)
        return self

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
