"""What `townsquare up` shows on its terminal: a short summary (URL, login, data and log folders)
and a line when something goes wrong, while the server's records (access lines included) and
each child process's output go to files in the log folder. And `memory serve` without Chroma's
banner. (The whole stack on embedded defaults, with the bundled model, is test_foundation's
`test_up_on_embedded_defaults_survives_restart`.)"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from townsquare.platform.cli.terminal import RotatingFile, Terminal, problem_in

from .helpers import free_port
from .test_init import Installation, installation  # noqa: F401 - the fixture: a schema, prefix and data folder of its own

SUMMARY = ("Starting Townsquare (logs in ", "Townsquare is running at ", "admin login: ", "society: ", "data folder: ", "logs: ",
           "stop with Ctrl-C", "Stopping ...", "Stopped.")
PROBLEM = re.compile(r"^\d\d:\d\d:\d\d (server|memory|model|worker|rq-worker): .+ - see (/\S+)\.log$")


class _Version(BaseHTTPRequestHandler):
    """An Ollama that only says its version: `up` waits for that before it starts the agents (no
    message is posted in this test, so no agent asks it anything)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b'{"version": "0.0.0"}'
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ollama() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Version)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Output:
    """A stream of the `up` process, read line by line in a thread (a full pipe would block it)."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found is not None:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never came: {self.lines}")

    def join(self) -> list[str]:
        self._thread.join(timeout=30)
        return self.lines


def _until(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("the condition was not met")


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_up_prints_a_short_summary_and_logs_to_files(installation: Installation, ollama: str) -> None:  # noqa: F811
    port = free_port()
    logs = installation.data_dir / "logs"
    env = {**installation.env, "TOWNSQUARE_PORT": str(port), "TOWNSQUARE_LOG_LEVEL": "INFO", "OLLAMA_HOST": ollama,
           "TOWNSQUARE_REVIVE_IDLE_SECONDS": "1000000", "TOWNSQUARE_SOCIAL_ACTIONS": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "up"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Output(proc.stdout), Output(proc.stderr)
    try:
        login = out.wait_for("admin login:")
        user, password = login.split("admin login:")[1].strip().split(" / ")
        assert out.wait_for("logs: ") == f"  logs: {logs} (server.log, worker.log, rq-worker.log)"
        base = f"http://127.0.0.1:{port}"
        token = httpx.post(f"{base}/api/v10/auth/login", json={"login": user, "password": password}, timeout=30).json()["token"]
        for _ in range(25):  # each request ends with an access line at info
            assert httpx.get(f"{base}/api/v10/users/@me", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200

        # ... in the server's log file, not on the terminal
        def access_lines() -> list[dict[str, Any]]:
            return [r for r in _records(logs / "server.log") if r["logger"] == "townsquare.access" and r["route"] == "/api/v10/users/@me"]

        _until(lambda: len(access_lines()) >= 25)  # (an access line is written once its response has gone out)
        # each child's output in its own file
        assert _until(lambda: any(r["msg"] == "worker started" for r in _records(logs / "worker.log")))
        assert _until(lambda: any(r["logger"].startswith("rq") for r in _records(logs / "rq-worker.log")))

        # a child that dies is said on the terminal, in one line naming its log file
        rq = next(c for c in psutil.Process(proc.pid).children() if "rq-worker" in c.cmdline())
        rq.send_signal(signal.SIGKILL)
        line = err.wait_for("rq-worker:", timeout=60)
        assert "the rq worker stopped (exit code -9)" in line and line.endswith(f"- see {logs / 'rq-worker.log'}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    stdout, stderr = out.join(), err.join()
    said = [line for line in stdout if line.strip()]
    assert all(line.strip().startswith(SUMMARY) for line in said), stdout
    assert len(said) == 9, stdout  # starting, the summary (with the society), stopping and stopped
    assert said[-2:] == ["Stopping ...", "Stopped."]
    for line in stderr:  # nothing but problem lines: no records, no access lines, no banners
        assert PROBLEM.match(line), stderr
    assert sum(1 for line in stderr if "rq-worker:" in line) == 1, stderr


def test_memory_serve_leaves_out_chromas_banner(tmp_path: Path) -> None:
    """`chroma run` prints a logo and "try Chroma Cloud! Sign up: ..." on stdout; we keep its log lines only."""
    port = free_port()
    env = {**os.environ, "RUST_LOG": "info"}  # so that Chroma does write log lines (one says it listens)
    proc = subprocess.Popen([sys.executable, "-m", "townsquare.platform.cli", "memory", "serve", "--port", str(port),
                             "--path", str(tmp_path / "chroma")], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc.stdout)
    try:
        _until(lambda: _heartbeat(f"http://127.0.0.1:{port}"), timeout=60)
        out.wait_for("listening", timeout=60)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = "\n".join(out.join())
    assert "Chroma Cloud" not in text and "trychroma.com" not in text and "Sign up" not in text and "((((" not in text, text


def _heartbeat(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_problem_lines_come_from_error_records_and_are_held_back_per_source(tmp_path: Path) -> None:
    assert problem_in(b'{"ts":"x","level":"error","logger":"townsquare.worker","msg":"turn failed"}\n') == "turn failed"
    assert problem_in(b'{"ts":"x","level":"info","logger":"townsquare.access","msg":"GET / 200"}\n') is None
    assert problem_in(b'{"level":"info","msg":"the word \\"level\\":\\"error\\" in a message"}\n') is None
    assert problem_in(b"Traceback (most recent call last):\n") == "a Python traceback"
    assert problem_in(b"  \x1b[2m2026-12-07T05:09:52Z\x1b[0m \x1b[31mERROR\x1b[0m  sqlite is locked\n").endswith("ERROR  sqlite is locked")
    assert problem_in(b"  2026-12-07T05:09:52Z  WARN  slow compaction\n") is None
    out, err = io.StringIO(), io.StringIO()
    terminal = Terminal(tmp_path, out, err)
    assert terminal.problem("worker", "turn failed\n  on two lines")
    assert not terminal.problem("worker", "turn failed again")  # within the minute: held back, counted
    assert terminal.problem("model", "out of memory")  # another source speaks
    assert terminal.problem("worker", "the agent worker stopped (exit code 1)", always=True)
    lines = err.getvalue().splitlines()
    assert [PROBLEM.match(line) is not None for line in lines] == [True, True, True]
    assert lines[0].endswith(f"worker: turn failed on two lines - see {tmp_path / 'worker.log'}")
    assert "(and 1 more since)" in lines[2] and out.getvalue() == ""


def test_log_files_rotate(tmp_path: Path) -> None:
    log = RotatingFile(tmp_path / "worker.log", max_bytes=100, backups=2)
    for i in range(12):
        log.write(f"line {i:02d} ".ljust(39).encode() + b"\n")  # 40 bytes: two lines a file
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["worker.log", "worker.log.1", "worker.log.2"]
    assert (tmp_path / "worker.log").read_text().split() == ["line", "10", "line", "11"]
    assert (tmp_path / "worker.log.2").read_text().split() == ["line", "06", "line", "07"]
