"""The record of scenario runs (`runs`): started by `townsquare run`, listed by the dashboard
(`GET /api/v10/townsquare/runs`, administrators)."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from ..core.errors import UnknownRun
from ..core.snowflake import new_id
from ..db.models import Run
from . import shapes
from .agents import require_admin
from .context import Platform
from .users import AuthUser

STATES = ("running", "done", "failed", "interrupted")


@lru_cache(maxsize=1)
def code_version() -> str:
    """`git describe` of the source tree when it is a checkout, else the installed package's version."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"git {out.stdout.strip()}"[:100]
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"townsquare {version('townsquare')}"
    except PackageNotFoundError:
        return "unknown"


def run_object(r: Any, *, with_scenario: bool = False) -> dict[str, Any]:
    obj = {"id": str(r.id), "batch_id": str(r.batch_id), "name": r.name, "arm": r.arm, "repeat": r.repeat,
           "code_version": r.code_version, "model": r.model, "seed": r.seed, "guild_id": shapes.sid(r.guild_id), "state": r.state,
           "error": r.error, "results": r.results, "started_at": shapes.iso(r.started_at), "ended_at": shapes.iso(r.ended_at)}
    if with_scenario:
        obj["scenario"] = r.scenario
    return obj


async def start_run(platform: Platform, *, batch_id: int, name: str, arm: str, repeat: int, scenario: str, model: str | None,
                    seed: int, created_by: int | None) -> int:
    run_id = new_id()
    async with platform.transaction() as tx:
        await tx.conn.execute(insert(Run).values(id=run_id, batch_id=batch_id, name=name, arm=arm[:120], repeat=repeat, scenario=scenario,
                                                 code_version=code_version(), model=model, seed=seed, state="running",
                                                 created_by=created_by))
    return run_id


async def set_guild(platform: Platform, run_id: int, guild_id: int) -> None:
    async with platform.transaction() as tx:
        await tx.conn.execute(update(Run).where(Run.id == run_id).values(guild_id=guild_id))


async def end_run(platform: Platform, run_id: int, state: str, *, results: dict[str, Any] | None = None, error: str | None = None) -> None:
    assert state in STATES
    values: dict[str, Any] = {"state": state, "ended_at": func.now(), "error": (" ".join(error.split())[:300] if error else None)}
    if results is not None:
        values["results"] = results
    async with platform.transaction() as tx:
        await tx.conn.execute(update(Run).where(Run.id == run_id).values(**values))


async def list_runs(platform: Platform, me: AuthUser, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    """Newest first."""
    require_admin(me)
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Run.id < before)
    async with platform.read() as conn:
        return [run_object(r) for r in (await conn.execute(query)).all()]


async def get_run(platform: Platform, me: AuthUser, run_id: int) -> dict[str, Any]:
    require_admin(me)
    async with platform.read() as conn:
        row = (await conn.execute(select(Run).where(Run.id == run_id))).first()
    if row is None:
        raise UnknownRun()
    return run_object(row, with_scenario=True)


@dataclass(frozen=True)
class RunScope:
    """What a run's report or export covers: its society, from the run's start to its end (to now
    while it runs), and the facts its "who knows" questions planted."""

    guild_id: int
    since_id: int
    until_id: int | None
    facts: list[Any]
    sim_speed: float | None = None  # the run's clock (its scenario's), not the server's: None if unreadable

    def bounds(self, since: int | None, until: int | None, facts: list[Any]) -> tuple[int, int | None, list[Any]]:
        """The caller's own bounds and facts where given, the run's elsewhere."""
        return (self.since_id if since is None else since, self.until_id if until is None else until, facts or self.facts)


async def run_scope(platform: Platform, run_id: int) -> RunScope:
    """The window and facts of a run (`townsquare export --run`, `?run=` on the analytics routes)."""
    from ...agents.scenario.load import parse_scenario
    from ...agents.scenario.questions import default_keywords
    from ..analytics.diffusion import Fact
    from ..analytics.window import id_at

    async with platform.read() as conn:
        row = (await conn.execute(select(Run).where(Run.id == run_id))).first()
    if row is None or row.guild_id is None:  # not a run, or one whose society was never founded (or was deleted)
        raise UnknownRun()
    try:
        scenario = parse_scenario(row.scenario)
        questions, sim_speed = scenario.questions, scenario.sim_speed
    except Exception:  # noqa: BLE001 - a scenario stored by an older version still has a window
        questions, sim_speed = [], None
    facts = [Fact(q.name, tuple(k.lower() for k in (q.keywords or default_keywords(q.fact))))
             for q in questions if q.kind == "knows"]
    until = id_at(row.ended_at.timestamp()) + (1 << 22) if row.ended_at else None
    return RunScope(row.guild_id, row.id, until, facts[:10], sim_speed)


async def scoped(platform: Platform, guild_id: int | None, run_id: int | None, since: int | None, until: int | None,
                 facts: list[Any]) -> tuple[int, int | None, int | None, list[Any]]:
    """(guild, since, until, facts) for an analytics request given a society, a run of it, or both
    (a run of another society is not found)."""
    if run_id is None:
        if guild_id is None:
            from ..core.errors import InvalidFormBody

            raise InvalidFormBody.field("guild", "BASE_TYPE_REQUIRED", "Give the society (--guild) or a run of it (--run).")
        return guild_id, since, until, facts
    scope = await run_scope(platform, run_id)
    if guild_id is not None and scope.guild_id != guild_id:
        raise UnknownRun()
    return (scope.guild_id, *scope.bounds(since, until, facts))
