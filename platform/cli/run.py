"""`townsquare run SCENARIO.yaml`: a scenario, unattended, to its answers.

The stack is `up`'s (embedded PostgreSQL and Redis unless configured, the memory server unless
CHROMA_URL, the bundled model unless OLLAMA_HOST, the HTTP server), on free loopback ports so that
it never collides with a running `up`; each run (an arm's repeat) gets a fresh society and its own
agent worker and rq worker, started with the run's seed and clock speed. Every process logs to
`<log dir>/runs/<batch id>/<name>.log` (this process's own records in `run.log`); the terminal
shows a progress bar per run and, at the end, each question's answer: with `--repeat N` its mean
and spread over the repeats, with a second arm (`--compare B.yaml` or `--without NAME`) the
difference between the arms with a 95% interval (agents/scenario/stats.py `compare_runs`, which the
batch report shares). `--json` prints one JSON object instead (the last line). Every run is
recorded in the `runs` table (the dashboard lists them); `townsquare report --batch ID` puts a
batch's arms side by side in one HTML file (platform/analytics/batch.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from pydantic import ValidationError

from ...agents.scenario import model as sc
from ...agents.scenario.load import ScenarioError, load_scenario
from ...agents.scenario.stats import compare_runs
from ..core.config import Settings, get_settings

log = logging.getLogger("townsquare.run")

READY_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    """The processes of a run: shared ones (memory, model, server) for the whole invocation, the
    agents' (worker, rq worker) per run. Children are `up`'s (terminal.Child): output to files."""

    def __init__(self, settings: Settings, services: Any, log_dir: Path) -> None:
        from .terminal import Terminal

        self.settings, self.services, self.log_dir = settings, services, log_dir
        self.terminal = Terminal(log_dir, out=open(os.devnull, "w"), err=open(os.devnull, "w"))  # noqa: SIM115 - problems: in the files
        self.port = free_port()
        self.env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
                    "TOWNSQUARE_HOST": "127.0.0.1", "TOWNSQUARE_PORT": str(self.port),
                    "TOWNSQUARE_PUBLIC_URL": f"http://127.0.0.1:{self.port}"}
        self.shared: list[Any] = []
        self.agents: list[Any] = []
        self.runs = 0

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Any:
        from ..core.logging import log_file_bytes
        from .terminal import Child, child_env, python_argv

        return Child(name, python_argv(args), child_env(env), self.terminal, log_file_bytes(self.settings))

    async def start(self) -> None:
        from . import _wait_http

        if not self.settings.chroma_url:
            port = free_port()
            self.shared.append(self._spawn("memory", ["memory", "serve", "--port", str(port)], self.env))
            self.env["CHROMA_URL"] = self.settings.chroma_url = f"http://127.0.0.1:{port}"
            if not await _wait_http(f"{self.settings.chroma_url}/api/v2/heartbeat", READY_TIMEOUT):
                raise RuntimeError(f"the memory server did not start (see {self.log_dir / 'memory.log'})")
        if not self.settings.ollama_host:
            port = free_port()
            self.shared.append(self._spawn("model", ["model", "serve", "--port", str(port)], self.env))
            self.env["OLLAMA_HOST"] = self.settings.ollama_host = f"http://127.0.0.1:{port}"
        self.shared.append(self._spawn("server", ["serve", "--no-migrate"], self.env))
        if not await _wait_http(f"http://127.0.0.1:{self.port}/health", READY_TIMEOUT):
            raise RuntimeError(f"the server did not start (see {self.log_dir / 'server.log'})")
        if not await _wait_http(f"{self.env['OLLAMA_HOST']}/api/version", READY_TIMEOUT):
            raise RuntimeError(f"the model at {self.env['OLLAMA_HOST']} did not answer (see {self.log_dir / 'model.log'})")

    def stop(self) -> None:
        from . import _stop_children

        self.terminal.stopping.set()
        _stop_children([*self.agents, *self.shared])
        self.agents, self.shared = [], []


class ProcessAgents:
    """The runner's `Agents`: a worker and an rq worker per run, with the run's seed and speed."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    async def start(self, seed: int, sim_speed: float) -> None:
        self.stack.runs += 1
        env = {**self.stack.env, "TOWNSQUARE_SEED": str(seed), "TOWNSQUARE_SIM_SPEED": repr(sim_speed)}
        n = self.stack.runs
        worker = self.stack._spawn(f"worker-{n}", ["worker", "--no-migrate"], env)
        self.stack.agents = [worker, self.stack._spawn(f"rq-worker-{n}", ["rq-worker"], env)]
        path = self.stack.log_dir / f"worker-{n}.log"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:  # the window starts when the worker has its agents
            if path.exists() and b"worker started" in path.read_bytes():
                return
            if worker.poll() is not None:
                break
            await asyncio.sleep(0.25)
        await self.stop()  # the rq worker too: nothing of this run outlives it
        raise RuntimeError(f"the agent worker did not start (see {path})")

    async def stop(self) -> None:
        from . import _stop_children

        await asyncio.to_thread(_stop_children, self.stack.agents)
        self.stack.agents = []

    def problem(self) -> str | None:
        for child in self.stack.agents:
            if child.poll() is not None:
                return f"{child.name} stopped (exit code {child.poll()}; see {self.stack.log_dir / (child.name + '.log')})"
        return None


class Bar:
    """A progress bar per run on the terminal (stderr), in simulated time."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def start(self, label: str, total: float) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[sim]}"),
                                  TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=Console(stderr=True))
        self._progress.start()
        self._task = self._progress.add_task(label, total=total, sim="", note="")

    def tick(self, sim_seconds: float, note: str) -> None:
        if self._progress is None:
            return
        fields: dict[str, Any] = {"sim": f"sim {fmt_sim(sim_seconds)}"}
        if note:
            fields["note"] = note[:60]
        self._progress.update(self._task, completed=sim_seconds, **fields)

    def end(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def fmt_sim(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    return (f"{days}d " if days else "") + f"{hours:02d}:{rest // 60:02d}"


def model_of(settings: Settings, scenario: sc.Scenario) -> str:
    """The model the run's agents use, for its record."""
    from ...agents.brain.routing import BUNDLED_MODEL

    if settings.routing_file is not None:
        if scenario.model:
            raise ScenarioError("`model` cannot be applied while TOWNSQUARE_ROUTING_FILE routes the agents", field="model")
        return f"routing file {settings.routing_file}"[:100]
    return scenario.model or BUNDLED_MODEL


def write_routing(log_dir: Path, model: str, ollama_host: str) -> Path:
    """A routing file giving every agent the scenario's model on the run's model server."""
    path = log_dir / "routing.yaml"
    path.write_text(yaml.safe_dump({"backends": {"local": {"kind": "ollama", "host": ollama_host, "model": model}},
                                    "routes": {"default": ["local"]}}, sort_keys=False))
    return path


def with_duration(scenario: sc.Scenario, duration: str) -> sc.Scenario:
    """The scenario with another duration, validated again (a timeline entry after the end is an error)."""
    try:
        changed = sc.Scenario.model_validate({**scenario.model_dump(), "duration": duration})
    except ValidationError as exc:
        raise ScenarioError(str(exc.errors()[0]["msg"]).removeprefix("Value error, "), field="--duration") from None
    late = changed.late_entry()
    if late is not None:
        raise ScenarioError(f"timeline entry {changed.timeline[late].name or late} comes after the end of the run "
                            f"({changed.duration:g} simulated seconds)", field="--duration")
    return changed


def arms(scenario: sc.Scenario, compare: sc.Scenario | None, without: str | None) -> list[tuple[str, sc.Scenario]]:
    out = [("A", scenario)]
    if compare is not None:
        out.append(("B", compare))
    elif without is not None:
        try:
            out.append((f"without {without}", scenario.without(without)))
        except KeyError:
            names = ", ".join(e.name for e in scenario.timeline if e.name) or "none has a name"
            raise ScenarioError(f"no timeline entry named {without!r} (named: {names})", field="timeline") from None
    return out


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def print_report(report: dict[str, Any]) -> None:
    for run in report["runs"]:
        typer.echo(f"run {run['id']} [{run['arm']} #{run['repeat'] + 1}] {run['state']}" + (f": {run['error']}" if run.get("error") else ""))
        for a in run.get("results", {}).get("questions", []):
            detail = ""
            if a["kind"] == "knows":
                detail = f"  informed {a['informed']}/{a['agents']} ({', '.join(a['who'][:8])}{'...' if len(a['who']) > 8 else ''}); said it: {len(a['said'])}"
            elif a["kind"] == "sentiment":
                detail = f"  over {a['messages']} messages"
            typer.echo(f"  {a['name']} ({a['kind']}): {_num(a['value'])}{detail}")
    typer.echo("")
    for q, entry in report["summary"].items():
        arms_text = "; ".join(f"{arm}: mean {_num(s['mean'])} sd {_num(s['sd'])} (n={s['n']})" for arm, s in entry["arms"].items())
        typer.echo(f"{q}: {arms_text}")
        d = entry.get("difference")
        if d:
            typer.echo(f"  {d['of']}: {_num(d['diff'])}  95% interval [{_num(d['low'])}, {_num(d['high'])}]  ({d['method']})")
    typer.echo(f"\nthe arms side by side in one HTML file: townsquare report --batch {report['batch_id']} --out report.html")


def run_command(scenario: Annotated[str, typer.Argument(help="A scenario file (YAML) or a bundled scenario's name.")],
                repeat: Annotated[int, typer.Option(min=1, max=100, help="Runs of each arm (seeds seed, seed+1, ...).")] = 1,
                compare: Annotated[str | None, typer.Option(help="A second scenario: the B arm of an A/B comparison.")] = None,
                without: Annotated[str | None, typer.Option(help="B arm: this scenario without the named timeline entry.")] = None,
                duration: Annotated[str | None, typer.Option(help="Override the scenario's duration (simulated, e.g. 2h).")] = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the last line) instead of the report.")] = False,
                progress: Annotated[bool, typer.Option(help="Show a progress bar (on stderr).")] = True) -> None:
    """Run a scenario unattended: a fresh society per run, the timeline applied on the society
    clock, the questions answered at the end; every run recorded (the dashboard lists them)."""
    if compare is not None and without is not None:
        raise typer.BadParameter("give --compare or --without, not both")
    try:
        main_scenario, base_dir = load_scenario(scenario)
        other = load_scenario(compare) if compare else None
        if duration is not None:
            main_scenario = with_duration(main_scenario, duration)
            if other is not None:
                other = (with_duration(other[0], duration), other[1])
        plan = arms(main_scenario, other[0] if other else None, without)
        model_of(get_settings(), main_scenario)
    except (ScenarioError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    bases = {"A": base_dir, "B": other[1] if other else base_dir}
    settings = get_settings()
    report = asyncio.run(_run_all(settings, plan, bases, repeat, show_progress=progress))
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        print_report(report)
    if any(r["state"] != "done" for r in report["runs"]):
        raise typer.Exit(1)


async def _run_all(settings: Settings, plan: list[tuple[str, sc.Scenario]], bases: dict[str, Path | None], repeat: int, *,
                   show_progress: bool) -> dict[str, Any]:
    from ...agents.mind.clock import SystemClock
    from ..api.app import build_platform, close_platform
    from ..core.logging import setup_logging
    from ..core.snowflake import new_id
    from ..db.models import Run
    from ..actions.users import AuthUser
    from . import _migrate, _services, ensure_admin
    from .runner import Progress, run_scenario

    batch_id = new_id()
    log_dir = settings.resolved_log_dir() / "runs" / str(batch_id)
    log_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(settings, file=log_dir / "run.log")
    services = await asyncio.to_thread(_services, settings)
    await asyncio.to_thread(_migrate, settings, services.database_url)
    admin_login = await ensure_admin(settings, services.database_url, services.redis_url)
    model_name = model_of(settings, plan[0][1])
    stack = Stack(settings, services, log_dir)
    bar = Bar(show_progress)
    try:
        await stack.start()
        if plan[0][1].model and settings.routing_file is None:  # the model server's address is known now
            stack.env["TOWNSQUARE_ROUTING_FILE"] = str(write_routing(log_dir, plan[0][1].model, stack.env["OLLAMA_HOST"]))
        platform = await build_platform(settings.model_copy(update={"chroma_url": stack.env.get("CHROMA_URL") or settings.chroma_url}),
                                        services.database_url, services.redis_url)
        try:
            from sqlalchemy import func, select

            from ..db.models import User

            async with platform.read() as conn:
                row = (await conn.execute(select(User).where(func.lower(User.username) == admin_login.username.lower()))).one()
            admin = AuthUser(row.id, row.username, row.global_name, row.avatar, False, True, 0)
            agents = ProcessAgents(stack)
            for r in range(repeat):
                for arm, scenario in plan:
                    await run_scenario(platform, admin, scenario, base_dir=bases["A" if arm == "A" else "B"], batch_id=batch_id,
                                       arm=arm, repeat=r, clock=SystemClock(), sleep=asyncio.sleep, agents_=agents,
                                       progress=Progress(bar.start, bar.tick, bar.end), model=model_name)
            async with platform.read() as conn:
                rows = (await conn.execute(select(Run).where(Run.batch_id == batch_id).order_by(Run.id))).all()
        finally:
            await close_platform(platform)
    finally:
        bar.end()
        stack.stop()
    from ..actions.runs import run_object

    records = [run_object(r) for r in rows]
    questions = [q.name for q in plan[0][1].questions]
    return {"batch_id": str(batch_id), "scenario": plan[0][1].name, "arms": [arm for arm, _ in plan], "repeat": repeat,
            "model": model_name, "logs": str(log_dir), "runs": records, "summary": compare_runs(records, questions)}
