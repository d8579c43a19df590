"""Structured logs: one JSON object per line (or plain text for a terminal). User content
and secrets are never passed to log calls at info level; only ids and sizes are.

Every record carries the fields bound to the current context (`bind_log_context`): the
request id while an HTTP request is served, the session id while a gateway session runs."""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar, Token
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

import orjson

from .config import Settings
from .logstore import install as install_log_store

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

# A mutable dict per request / session: a dependency that learns more (the user id) adds it in
# place, and the middleware that bound the dict sees it for its access line.
_log_context: ContextVar[dict[str, Any] | None] = ContextVar("townsquare_log_context", default=None)


def bind_log_context(**fields: Any) -> Token[dict[str, Any] | None]:
    """Starts a new context (a request, a gateway session); returns the token for `reset_log_context`."""
    return _log_context.set(dict(fields))


def reset_log_context(token: Token[dict[str, Any] | None]) -> None:
    _log_context.reset(token)


def annotate_log_context(**fields: Any) -> None:
    """Adds fields to the current context, if one is bound (a no-op outside requests and sessions)."""
    current = _log_context.get()
    if current is not None:
        current.update(fields)


def log_context() -> dict[str, Any]:
    return dict(_log_context.get() or {})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_log_context.get() or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                out[key] = value  # a record's own extra wins over the context
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a terminal: the classic line, then the context's ids."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _log_context.get()
        return line + "".join(f" {k}={v}" for k, v in context.items()) if context else line


LOG_FILE_BACKUPS = 3  # older files kept beside a log file of `up` (name.log.1 ... name.log.3)


def log_file_bytes(settings: Settings) -> int:
    return max(1, int(settings.log_file_max_mb * 1_000_000))


def setup_logging(settings: Settings, *, file: Path | None = None) -> None:
    """Once per process: records on stderr, or in `file` (what `up` does, rotated past
    TOWNSQUARE_LOG_FILE_MAX_MB, with Python's warnings among them), and in the log store."""
    root = logging.getLogger()
    if getattr(root, "_townsquare", False):
        return
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(file, maxBytes=log_file_bytes(settings), backupCount=LOG_FILE_BACKUPS, encoding="utf-8")
        logging.captureWarnings(True)  # a library's warning is a record in the file, not a line on the terminal
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    # HTTP clients log every request at INFO (an agent's turn is three of them): keep them for warnings
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    install_log_store(root, settings)  # every process's records, for the dashboard's log viewer
    root._townsquare = True  # type: ignore[attr-defined]
