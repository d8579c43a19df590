"""What `townsquare up` shows on its terminal, and where everything else goes.

The terminal gets a short summary (the URL, the login, the data and log folders) and one line
when something goes wrong: a process of the stack stops, or one logs an error. Everything else
goes to files in the log folder (TOWNSQUARE_LOG_DIR, default DATA_DIR/logs): the server's own
records, access lines included, to `server.log` (core/logging.py); each child process's output
(its JSON records, and whatever else it writes: Chroma's and llama.cpp's own lines, a crash's
traceback) to `<name>.log`, read from its pipe by a thread here. Every file is rotated past
TOWNSQUARE_LOG_FILE_MAX_MB, with LOG_FILE_BACKUPS older ones kept.

A problem line carries the record's message only (never its fields or traceback: those are in
the file it names), and one source says at most one line a minute (QUIET_SECONDS; the lines held
back are counted in its next one), so a failing process cannot flood the terminal again. A
process that stops always gets its line."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

from ..core.logging import LOG_FILE_BACKUPS

QUIET_SECONDS = 60.0  # one problem line per source per minute at most
STOP_GRACE_SECONDS = 1.0  # a child that ends this soon before `up` says it is stopping ended because of the same signal
MAX_PROBLEM_CHARS = 200

# What each process is, in the terminal's words (the log file is <name>.log)
ROLES = {"server": "the server", "memory": "the memory store (Chroma)", "model": "the model server",
         "worker": "the agent worker", "rq-worker": "the rq worker"}

_ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")
_PLAIN_ERROR = re.compile(rb"\b(ERROR|CRITICAL|FATAL)\b|panicked at")


class Terminal:
    """The lines `up` prints: `say` on stdout (the summary), `problem` on stderr."""

    def __init__(self, log_dir: Path, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.log_dir = log_dir
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.stopping = threading.Event()  # set once `up` stops: children ending then are expected
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def problem(self, source: str, text: str, *, always: bool = False) -> bool:
        """One line about `source` (a ROLES name), pointing at its log file; False when held back."""
        now = time.monotonic()
        with self._lock:
            if not always and now - self._last.get(source, -QUIET_SECONDS) < QUIET_SECONDS:
                self._held[source] = self._held.get(source, 0) + 1
                return False
            self._last[source] = now
            held = self._held.pop(source, 0)
            more = f" (and {held} more since)" if held else ""
            self.err.write(f"{time.strftime('%H:%M:%S')} {source}: {_clip(text)}{more} - see {self.log_dir / f'{source}.log'}\n")
            self.err.flush()
            return True


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS - 1] + "…"


class RotatingFile:
    """Appends bytes to `path`; past `max_bytes` it becomes path.1 (path.1 becomes path.2, ...)
    and a new file starts. One writer per file (each child's pump thread has its own)."""

    def __init__(self, path: Path, max_bytes: int, backups: int = LOG_FILE_BACKUPS) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the process's life
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()  # `tail -f` sees each line as it comes
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.backups > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._file.close()


def problem_in(line: bytes) -> str | None:
    """What an output line of a child says went wrong (its message), or None for a line that is
    not an error: a JSON record at error or critical level; another program's line (Chroma,
    llama.cpp) naming ERROR, CRITICAL or FATAL, or a panic; the start of a Python traceback."""
    if line.startswith(b"{"):
        if b'"level":"error"' not in line and b'"level":"critical"' not in line:
            return None
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(record, dict) or record.get("level") not in ("error", "critical"):
            return None
        return str(record.get("msg") or record.get("logger") or "an error")
    if line.startswith(b"Traceback (most recent call last)"):
        return "a Python traceback"
    plain = _ANSI.sub(b"", line)
    if _PLAIN_ERROR.search(plain):
        return plain.decode("utf-8", "replace").strip()
    return None


class Child:
    """A process of the stack: its output (stdout and stderr) goes to `<log_dir>/<name>.log`
    through a pipe read by a thread, which also tells the terminal about errors and about the
    process ending while `up` runs."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], terminal: Terminal, max_bytes: int) -> None:
        self.name = name
        self.terminal = terminal
        self.log = RotatingFile(terminal.log_dir / f"{name}.log", max_bytes)
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._pump = threading.Thread(target=self._read, name=f"up-{name}-output", daemon=True)
        self._pump.start()
        # its own thread: a process's output may outlive it (a forked job still writing to the pipe)
        threading.Thread(target=self._watch, name=f"up-{name}-exit", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in iter(self.proc.stdout.readline, b""):
                self.log.write(line)
                what = problem_in(line)
                if what is not None and not self.terminal.stopping.is_set():
                    self.terminal.problem(self.name, what)
        finally:
            self.log.close()

    def _watch(self) -> None:
        code = self.proc.wait()
        if not self.terminal.stopping.wait(STOP_GRACE_SECONDS):
            self.terminal.problem(self.name, f"{ROLES.get(self.name, self.name)} stopped (exit code {code})", always=True)

    # the Popen interface `up` stops its children with
    def poll(self) -> int | None:
        return self.proc.poll()

    def terminate(self) -> None:
        self.proc.terminate()

    def kill(self) -> None:
        self.proc.kill()

    def wait(self, timeout: float | None = None) -> int:
        code = self.proc.wait(timeout=timeout)
        self._pump.join(timeout=5)  # the last lines are in the file before `up` returns
        return code


class ProblemHandler(logging.Handler):
    """The server's own error records (in `up`'s process) as problem lines."""

    def __init__(self, terminal: Terminal) -> None:
        super().__init__(logging.ERROR)
        self.terminal = terminal

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not self.terminal.stopping.is_set():
                self.terminal.problem("server", record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never fail the caller
            self.handleError(record)


def child_env(env: dict[str, Any]) -> dict[str, str]:
    """A child's environment under `up`: its output is a file, so no colours, and Python's
    writes are not held in a buffer (a crash's last lines reach the file)."""
    out = {k: str(v) for k, v in env.items()}
    out.setdefault("NO_COLOR", "1")
    out["PYTHONUNBUFFERED"] = "1"
    return out


def python_argv(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "townsquare.platform.cli", *args]
