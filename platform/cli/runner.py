"""One run of a scenario against a live society: found the society, start its agents, apply the
timeline on the society clock, answer the questions, record the run.

The runner acts through the action layer (interventions.do_intervene), as an administrator
would, and drives time through a `Clock` and a sleep function, so a test can run a whole
timeline on a fake clock. Starting and stopping the agents (worker processes) is the caller's
`Agents` (platform/cli/run.py starts real ones), so the same loop runs with or without them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from sqlalchemy import select

from ...agents.mind.clock import Clock
from ...agents.scenario import model as sc
from ...agents.scenario.load import society_of
from ...agents.society.persona import Society as SocietySpec
from ..actions import agents, interventions, measure, runs
from ..actions.users import AuthUser
from ..core.snowflake import EPOCH_MS
from ..db.models import Society

log = logging.getLogger("townsquare.run")

TICK_SECONDS = 1.0  # how often the loop looks at the timeline and the agents


class Agents(Protocol):
    """The society's agents for one run: worker processes started with the run's seed and clock speed."""

    async def start(self, seed: int, sim_speed: float) -> None: ...

    async def stop(self) -> None: ...

    def problem(self) -> str | None:
        """Why the agents cannot go on (a process that died), or None."""
        ...


class NoAgents:
    """A run without agents: the timeline and the questions only (tests, dry runs)."""

    async def start(self, seed: int, sim_speed: float) -> None:
        return None

    async def stop(self) -> None:
        return None

    def problem(self) -> str | None:
        return None


@dataclass
class Progress:
    """What the loop reports as it goes (the terminal's progress bar)."""

    on_start: Callable[[str, float], None] = lambda label, total: None
    on_tick: Callable[[float, str], None] = lambda sim_seconds, note: None
    on_end: Callable[[], None] = lambda: None


def run_seed(scenario: sc.Scenario, repeat: int) -> int:
    """Repeat r of a scenario with seed s runs with seed s + r (seed 0 counts as 1: 0 means unseeded)."""
    return (max(scenario.seed, 1) + repeat) % (2**31 - 1) or 1


def society_spec(scenario: sc.Scenario, base_dir: Path | None) -> SocietySpec:
    return society_of(scenario, base_dir)


def snowflake_at(seconds: float) -> int:
    return max(0, int(seconds * 1000) - EPOCH_MS) << 22


@dataclass
class RunOutcome:
    run_id: int
    guild_id: int | None
    state: str
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


async def _pause_others(platform: Any, admin: AuthUser, keep: int, reason: str) -> list[int]:
    """Pauses the other live societies for the run's length (a clean measurement, and the model is
    the run's); returns those it paused, to resume them after."""
    async with platform.read() as conn:
        live = (await conn.execute(select(Society.guild_id).where(Society.paused.is_(False), Society.guild_id != keep))).scalars().all()
    for guild_id in live:
        await agents.do_set_society_paused(platform, admin, int(guild_id), True, reason)
    return [int(g) for g in live]


async def run_scenario(platform: Any, admin: AuthUser, scenario: sc.Scenario, *, base_dir: Path | None, batch_id: int,
                       arm: str, repeat: int, clock: Clock, sleep: Callable[[float], Awaitable[None]], agents_: Agents,
                       progress: Progress | None = None, model: str | None = None) -> RunOutcome:
    """Runs one repeat of one arm; the run's row says how it went (running, then done / failed / interrupted)."""
    progress = progress or Progress()
    seed = run_seed(scenario, repeat)
    text = yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    run_id = await runs.start_run(platform, batch_id=batch_id, name=scenario.name, arm=arm, repeat=repeat, scenario=text,
                                  model=model or scenario.model, seed=seed, created_by=admin.id)
    outcome = RunOutcome(run_id, None, "running")
    paused: list[int] = []
    started = False
    try:
        spec = society_spec(scenario, base_dir)
        if scenario.model:
            spec = spec.model_copy(update={"agents": [a.model_copy(update={"model": scenario.model}) for a in spec.agents]})
        guild_id = await agents.do_found_society(platform, admin.id, spec, name=f"{scenario.name} run {run_id}"[:100],
                                                 username_suffix=interventions.run_suffix(run_id))
        outcome.guild_id = guild_id
        await runs.set_guild(platform, run_id, guild_id)
        paused = await _pause_others(platform, admin, guild_id, f"townsquare run {run_id} ({scenario.name}) is running")
        await agents_.start(seed, scenario.sim_speed)
        started = True
        start = clock.now()
        since_id = snowflake_at(start)
        due = sorted(enumerate(scenario.timeline), key=lambda ie: (ie[1].real_offset(scenario.sim_speed), ie[0]))
        applied: list[dict[str, Any]] = []
        told: set[int] = set()
        progress.on_start(f"{scenario.name} [{arm}] #{repeat + 1}", scenario.duration)
        while True:
            elapsed = clock.now() - start
            while due and due[0][1].real_offset(scenario.sim_speed) <= elapsed:
                index, entry = due.pop(0)
                did = await interventions.do_intervene(platform, admin, guild_id, entry, run_id=run_id, base_dir=base_dir)
                if isinstance(entry, sc.Tell):
                    told.add(int(did["agent_id"]))
                applied.append({"index": index, "name": entry.name, "kind": entry.kind, "at_sim_s": round(elapsed * scenario.sim_speed, 1),
                                "did": did["did"]})
                log.info("intervention applied", extra={"run_id": run_id, "kind": entry.kind, "did": did["did"]})
                progress.on_tick(elapsed * scenario.sim_speed, did["did"])
            problem = agents_.problem()
            if problem:
                raise RuntimeError(problem)
            if elapsed >= scenario.real_duration:
                break
            progress.on_tick(min(elapsed, scenario.real_duration) * scenario.sim_speed, "")
            await sleep(min(TICK_SECONDS, scenario.real_duration - elapsed))
        progress.on_tick(scenario.duration, "answering the questions")
        await agents_.stop()
        started = False
        answers = [await measure.answer(platform, guild_id, q, since_id=since_id, told=frozenset(told)) for q in scenario.questions]
        outcome.results = {"questions": answers, "interventions": applied, "sim_seconds": scenario.duration,
                           "messages": await measure.messages_since(platform, guild_id, since_id),
                           "real_seconds": round(clock.now() - start, 1), "seed": seed, "guild_id": str(guild_id)}
        outcome.state = "done"
    except (asyncio.CancelledError, KeyboardInterrupt):
        outcome.state, outcome.error = "interrupted", "stopped before its end"
        raise
    except Exception as exc:
        log.exception("run failed", extra={"run_id": run_id})
        outcome.state, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        progress.on_end()
        if started:
            await agents_.stop()
        if outcome.guild_id is not None:  # the run's society rests once measured (a later `up` leaves it alone)
            await agents.do_set_society_paused(platform, admin, outcome.guild_id, True, f"run {run_id} ended ({outcome.state})")
        for guild_id in paused:
            await agents.do_set_society_paused(platform, admin, guild_id, False, f"townsquare run {run_id} ended")
        await runs.end_run(platform, run_id, outcome.state if outcome.state != "running" else "interrupted",
                           results=outcome.results or None, error=outcome.error)
    return outcome
