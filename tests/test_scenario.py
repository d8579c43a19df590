"""Scenarios: the file's validation (line and field named), every intervention kind applied to a
live society through the real stack (HTTP route -> action layer -> DB, events, audit log, the
agent worker), a run recorded with its answers, and a run's seed reproducing the turn-taking
decisions on a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from townsquare.agents.mind.clock import FakeClock
from townsquare.agents.mind.policy import PolicyConfig
from townsquare.agents.scenario.document import claims
from townsquare.agents.scenario.load import ScenarioError, load_scenario, parse_scenario
from townsquare.agents.scenario.model import parse_duration
from townsquare.agents.scenario.stats import compare_arms, compare_runs, difference, summary
from townsquare.agents.society.persona import Society
from townsquare.platform.actions import agents
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.cli.runner import NoAgents, run_scenario
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.worker import AgentWorker

from .fakellm import FakeLLM
from .helpers import Actor, RunningServer, assert_discord_error, name, person, wait_for
from .test_scheduler import Sim
from .test_worker import llm, worker_settings  # noqa: F401 - the fake LLM fixture

GOOD = """\
name: demo
society: village
seed: 3
sim_speed: 60
duration: 2h
timeline:
  - name: plant
    at: 10m
    kind: tell
    agent: Ana
    fact: The mill reopens on Friday.
questions:
  - name: mill
    kind: knows
    fact: the mill reopens on Friday
    keywords: [mill, friday]
"""


def _error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="demo.yaml")
    return caught.value


# --- the file ---


def test_a_valid_scenario_parses_with_its_times_in_seconds() -> None:
    scenario = parse_scenario(GOOD)
    assert scenario.duration == 7200 and scenario.timeline[0].at == 600 and scenario.timeline[0].real_offset(60) == 10
    assert scenario.questions[0].keywords == ["mill", "friday"]
    assert [e.name for e in scenario.without("plant").timeline] == []


def test_errors_name_the_line_and_the_field() -> None:
    missing = _error(GOOD.replace("    agent: Ana\n", ""))
    assert (missing.line, missing.field) == (7, "timeline.0.agent") and "required" in missing.message.lower()
    assert str(missing).startswith("demo.yaml:7: timeline.0.agent:")

    bad_time = _error(GOOD.replace("at: 10m", "at: 10 parsecs"))
    assert (bad_time.line, bad_time.field) == (8, "timeline.0.at") and "duration" in bad_time.message

    unknown_kind = _error(GOOD.replace("kind: tell", "kind: teleport"))
    assert (unknown_kind.line, unknown_kind.field) == (7, "timeline.0") and "teleport" in unknown_kind.message

    too_late = _error(GOOD.replace("at: 10m", "at: 3h"))
    assert (too_late.line, too_late.field) == (8, "timeline.0.at") and "after the end" in too_late.message

    extra = _error(GOOD + "colour: blue\n")
    assert (extra.line, extra.field) == (17, "colour")

    bad_question = _error(GOOD.replace("kind: knows", "kind: knows\n    threshold: 7"))
    assert (bad_question.line, bad_question.field) == (15, "questions.0.threshold")

    not_yaml = _error("name: [unclosed\n")
    assert not_yaml.line == 2 and "YAML" in not_yaml.message


def test_a_scenario_file_naming_an_unknown_agent_or_channel_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    text = GOOD.replace("agent: Ana", "agent: Maren Holt").replace("questions:", "  - kind: pause_agent\n    agent: Marin Holt\nquestions:")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert (caught.value.line, caught.value.field) == (13, "timeline.1.agent") and "Marin Holt" in caught.value.message
    path.write_text(text.replace("agent: Marin Holt", "agent: Tobias Reed").replace("kind: pause_agent", "kind: close_channel\n    channel: docks")
                    .replace("    agent: Tobias Reed\n", ""), encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.field == "timeline.1.channel" and "docks" in caught.value.message
    path.write_text(text.replace("Marin Holt", "Tobias Reed"), encoding="utf-8")
    assert load_scenario(path)[0].timeline[1].agent == "Tobias Reed"


def test_the_bundled_diffusion_scenario_is_valid() -> None:
    scenario, base = load_scenario("diffusion")
    assert scenario.society == "city" and scenario.timeline[0].kind == "tell" and base is not None
    assert {q.kind for q in scenario.questions} == {"knows", "sentiment", "stance"}


def test_durations_claims_and_statistics() -> None:
    assert parse_duration("1d 6h") == 108000 and parse_duration(90) == 90 and parse_duration("1.5h") == 5400
    with pytest.raises(ValueError):
        parse_duration("soon")
    text = "# Notice\nThe bridge closes on Monday for repairs. Is that bad? The bus will take the long road.\n\n- Shops stay open late."
    assert claims(text) == ["The bridge closes on Monday for repairs.", "The bus will take the long road.", "Shops stay open late."]
    assert summary([0.2, 0.4, None]) == {"n": 2, "mean": pytest.approx(0.3), "sd": pytest.approx(0.1414, abs=1e-3), "min": 0.2, "max": 0.4}
    diff = difference([0.6, 0.7, 0.8], [0.0, 0.1, 0.05], seed=1)
    assert diff["diff"] == pytest.approx(0.65) and 0 < diff["low"] <= diff["diff"] <= diff["high"]
    assert difference([0.5], [0.1])["method"].startswith("single repeat")


def _results(**values: float | None) -> dict[str, Any]:
    return {"questions": [{"name": q, "kind": "knows", "value": v} for q, v in values.items()]}


def test_arms_compared_first_minus_second() -> None:
    """The one comparison the command and the batch report share: A - B (not B - A), per question."""
    out = compare_arms(["mill", "mood"], {"A": [_results(mill=0.6, mood=0.1), _results(mill=0.8)],
                                          "B": [_results(mill=0.2, mood=0.3), _results(mill=0.3, mood=None)]}, seed=3)
    mill = out["mill"]
    assert mill["arms"]["A"]["mean"] == pytest.approx(0.7) and mill["arms"]["B"]["mean"] == pytest.approx(0.25)
    assert mill["difference"]["of"] == "A - B" and mill["difference"]["diff"] == pytest.approx(0.45)
    assert 0.3 - 1e-9 <= mill["difference"]["low"] <= 0.45 <= mill["difference"]["high"] <= 0.6 + 1e-9  # every resample has A above B
    assert out["mood"]["arms"]["A"]["n"] == 1 and out["mood"]["difference"]["diff"] == pytest.approx(-0.2)
    assert "difference" not in compare_arms(["mill"], {"A": [_results(mill=0.5)]}, seed=1)["mill"]  # one arm: nothing to compare

    # over run records: arms in the order they ran, done runs only, the bootstrap seeded by the first run's seed
    runs = [{"arm": "A", "state": "done", "seed": 3, "results": _results(mill=0.6, mood=0.1)},
            {"arm": "without plant", "state": "done", "seed": 3, "results": _results(mill=0.2)},
            {"arm": "A", "state": "done", "seed": 4, "results": _results(mill=0.8)},
            {"arm": "without plant", "state": "failed", "seed": 4, "results": _results(mill=0.9)},
            {"arm": "without plant", "state": "done", "seed": 4, "results": _results(mill=0.3)}]
    by_runs = compare_runs(runs)
    assert list(by_runs) == ["mill", "mood"] and by_runs["mill"]["difference"]["of"] == "A - without plant"
    assert by_runs["mill"]["arms"]["without plant"]["n"] == 2  # the failed run is not counted
    assert by_runs["mill"]["difference"] == {**mill["difference"], "of": "A - without plant"}  # same numbers, seed 3
    assert list(compare_runs(runs, ["mood"])) == ["mood"]


# --- the seed ---


def _decisions(seed: int) -> list[tuple[float, int, int, bool]]:
    sim = Sim("city", PolicyConfig(chain_cap=6, channel_budget_per_minute=6, cooldown_seconds=20, revive_idle_seconds=120, seed=seed),
              humans=1 / 300)
    sim.run(2 * 3600)
    return sim.log


def test_a_run_seed_reproduces_the_scheduling_decisions_on_a_fake_clock() -> None:
    first, again, other = _decisions(11), _decisions(11), _decisions(12)
    assert len(first) > 50
    assert first == again  # who spoke where and when: the same, message for message
    assert first != other  # another seed draws otherwise


# --- interventions on a live society ---

CAST = {"guild": "Scenario test", "channels": [{"name": "general"}, {"name": "market"}],
        "agents": [{"name": "Ana Test", "bio": "A gardener.", "interests": ["gardening"]},
                   {"name": "Ben Test", "bio": "A baker.", "interests": ["bread"]},
                   {"name": "Cy Test", "bio": "A fisher.", "interests": ["boats"]}]}


async def _society(platform: Platform, admin: Actor) -> tuple[int, dict[str, str]]:
    spec = Society.model_validate({**CAST, "agents": [{**a, "name": f"{a['name']} {name('')[:4]}"} for a in CAST["agents"]]})
    guild_id = await agents.do_found_society(platform, admin.id, spec, name("society"))
    cast = await agents.list_agents(platform, await authenticate(platform, "Bearer", admin.token), guild_id)
    return guild_id, {a["name"].split()[0]: a["name"] for a in cast}


async def _intervene(client: httpx.AsyncClient, admin: Actor, guild_id: int, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post(f"/api/v10/townsquare/societies/{guild_id}/interventions", json=body, headers=admin.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_every_intervention_kind_changes_the_live_society(platform: Platform, settings: Settings, server: RunningServer,
                                                                client: httpx.AsyncClient, llm: FakeLLM) -> None:  # noqa: F811
    admin = await person(platform, is_admin=True)
    me = await authenticate(platform, "Bearer", admin.token)
    guild_id, names = await _society(platform, admin)
    worker = AgentWorker(worker_settings(settings, server, llm.url), platform, name=name("w"))
    await worker.start()
    try:
        # tell: a memory of the agent, found by a memory search
        told = await _intervene(client, admin, guild_id, {"kind": "tell", "name": "plant", "agent": names["Ana"],
                                                          "fact": "The lighthouse will be painted purple next week.", "importance": 9})
        found = await platform.memory.search(int(told["agent_id"]), "lighthouse painted purple", k=3)
        assert any("lighthouse" in s.memory.text for s in found) and "told" in told["did"]

        # news: posted to the channel by the society's news source (the world's news action)
        news = await _intervene(client, admin, guild_id, {"kind": "news", "channel": "market", "title": "Fish prices",
                                                          "content": "Mackerel is half price at the harbour today."})
        assert news["news"]["content"] == "Fish prices — Mackerel is half price at the harbour today."
        assert news["news"]["channel_id"] == news["channel_id"] and news["news"]["author"]["bot"] is True
        async with platform.read() as conn:
            stored = (await conn.execute(text("SELECT channel_id, content FROM messages WHERE id = :i"), {"i": int(news["news"]["id"])})).one()
        assert (str(stored.channel_id), stored.content) == (news["channel_id"], news["news"]["content"])

        # add_agent, change_agent (traits merged, stances), pause / mute / resume, remove_agent: the worker follows each
        added = await _intervene(client, admin, guild_id, {"kind": "add_agent", "persona": {"name": f"Dee {name('')[:4]}", "bio": "A new neighbour."}})
        await wait_for(lambda: _true(int(added["agent_id"]) in worker.state.agents), timeout=15)
        changed = await _intervene(client, admin, guild_id, {"kind": "change_agent", "agent": names["Ben"], "traits": {"extraversion": 0.95},
                                                             "interests": ["sourdough"], "stances": {"the bridge": -0.8}})
        ben = changed["agent"]
        assert ben["persona"]["traits"]["extraversion"] == 0.95 and ben["persona"]["traits"]["openness"] == 0.5
        assert ben["persona"]["interests"] == ["sourdough"] and ben["persona"]["stances"] == {"the bridge": -0.8}
        ben_id = int(changed["agent_id"])
        await wait_for(lambda: _true(worker.state.agents[ben_id].persona.interests == ["sourdough"]), timeout=15)
        for kind, state in (("pause_agent", "paused"), ("mute_agent", "muted"), ("resume_agent", "active")):
            did = await _intervene(client, admin, guild_id, {"kind": kind, "agent": str(ben_id)})
            assert did["agent"]["state"] == state
            await wait_for(lambda: _true(worker.state.agents[ben_id].state == state), timeout=15)
        removed = await _intervene(client, admin, guild_id, {"kind": "remove_agent", "agent": names["Cy"]})
        await wait_for(lambda: _true(int(removed["agent_id"]) not in worker.state.agents), timeout=15)

        # open_channel, then close it: agents may no longer post there, and the worker leaves it alone
        opened = await _intervene(client, admin, guild_id, {"kind": "open_channel", "channel": "harbour", "topic": "boats"})
        channel_id = int(opened["channel_id"])
        await wait_for(lambda: _true(channel_id in worker.state.channels), timeout=15)
        await _intervene(client, admin, guild_id, {"kind": "close_channel", "channel": "#harbour"})
        await wait_for(lambda: _true(channel_id not in worker.state.channels), timeout=15)
        r = await client.post(f"/api/v10/townsquare/agents/{told['agent_id']}/messages",
                              json={"channel_id": str(channel_id), "content": "anyone here?"}, headers=admin.headers)
        assert_discord_error(r, 403, 50013)

        # inject_document: each claim known to the chosen agents, not to the others
        doc = await _intervene(client, admin, guild_id, {"kind": "inject_document", "title": "Council notice", "agents": [names["Ana"]],
                                                         "text": "The ferry stops running in December. Is this final? "
                                                                 "A new ferry company takes over in spring."})
        assert doc["claims"] == ["The ferry stops running in December.", "A new ferry company takes over in spring."]
        assert doc["memories"] == 2 and doc["agent_ids"] == [told["agent_id"]]
        found = await platform.memory.search(int(told["agent_id"]), "ferry company", k=3)
        assert any("Council notice" in s.memory.text and "ferry company" in s.memory.text for s in found)
        assert not any("ferry" in s.memory.text for s in await platform.memory.search(ben_id, "ferry company", k=3))
    finally:
        await worker.stop()

    # each one audit-logged as an intervention in the society's log, by the administrator
    log = await client.get(f"/api/v10/townsquare/security-log?guild_id={guild_id}&action_type=215&limit=100", headers=admin.headers)
    entries = log.json()["entries"]
    assert {e["options"]["kind"] for e in entries} == {"tell", "news", "add_agent", "change_agent", "pause_agent", "mute_agent", "resume_agent",
                                                       "remove_agent", "open_channel", "close_channel", "inject_document"}
    assert all(e["user_id"] == str(me.id) and e["action"] == "SOCIETY_INTERVENTION" for e in entries)
    assert next(e for e in entries if e["options"]["kind"] == "tell")["options"]["name"] == "plant"


async def _true(value: bool) -> bool:
    return value


async def test_bad_interventions_are_4xx_in_discords_shape(platform: Platform, client: httpx.AsyncClient) -> None:
    admin = await person(platform, is_admin=True)
    guild_id, names = await _society(platform, admin)
    url = f"/api/v10/townsquare/societies/{guild_id}/interventions"
    body = assert_discord_error(await client.post(url, json={"kind": "teleport"}, headers=admin.headers), 400, 50035)
    assert "kind" in body["errors"]
    body = assert_discord_error(await client.post(url, json={"kind": "tell", "agent": names["Ana"]}, headers=admin.headers), 400, 50035)
    assert "fact" in body["errors"]
    body = assert_discord_error(await client.post(url, json={"kind": "change_agent", "agent": names["Ana"], "traits": {"openness": 3}},
                                                  headers=admin.headers), 400, 50035)
    assert "traits" in body["errors"]
    assert_discord_error(await client.post(url, json={"kind": "tell", "agent": "Nobody", "fact": "x y z w"}, headers=admin.headers), 404, 10100)
    assert_discord_error(await client.post(url, json={"kind": "close_channel", "channel": "nowhere"}, headers=admin.headers), 404, 10003)
    assert_discord_error(await client.post(url, json={"kind": "inject_document", "path": "/etc/passwd"}, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.post(url, json=["tell"], headers=admin.headers), 400)
    assert_discord_error(await client.post("/api/v10/townsquare/societies/1/interventions", json={"kind": "tell", "agent": "a", "fact": "b"},
                                           headers=admin.headers), 404, 10004)
    someone = await person(platform)
    assert_discord_error(await client.post(url, json={"kind": "pause_agent", "agent": names["Ana"]}, headers=someone.headers), 403, 50013)


# --- a run ---


async def test_a_run_applies_its_timeline_on_the_society_clock_and_is_recorded(platform: Platform, client: httpx.AsyncClient,
                                                                               tmp_path: Path) -> None:
    admin = await person(platform, is_admin=True)
    me = await authenticate(platform, "Bearer", admin.token)
    (tmp_path / "notice.txt").write_text("The mill reopens on Friday with a new miller. Flour will be cheaper.\n")
    first = (await agents.list_agents(platform, me, None))
    scenario = parse_scenario(f"""\
name: mill {name('')}
society: village
seed: 5
sim_speed: 3600
duration: 3h
timeline:
  - {{name: plant, at: 1h, kind: tell, agent: Maren Holt, fact: "The mill reopens on Friday with a new miller."}}
  - {{name: notice, at: 2h, kind: inject_document, path: notice.txt, agents: [Tobias Reed]}}
  - {{name: quiet, at: 2h, kind: pause_agent, agent: Tobias Reed}}
questions:
  - {{name: mill, kind: knows, fact: the mill reopens on Friday, keywords: [mill, friday]}}
  - {{name: bread, kind: sentiment, topic: bread}}
  - {{name: bread-stance, kind: stance, topic: bread}}
""")
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)
        await asyncio.sleep(0)

    outcome = await run_scenario(platform, me, scenario, base_dir=tmp_path, batch_id=42, arm="A", repeat=1, clock=clock, sleep=sleep,
                                 agents_=NoAgents())
    assert outcome.state == "done", outcome.error
    applied = outcome.results["interventions"]
    # on the society clock: 1 h and 2 h simulated at 3600x are 1 s and 2 s of (fake) real time
    assert [(a["name"], a["at_sim_s"]) for a in applied] == [("plant", 3600.0), ("notice", 7200.0), ("quiet", 7200.0)]
    assert sum(slept) == pytest.approx(3.0)
    mill = next(q for q in outcome.results["questions"] if q["name"] == "mill")
    # the told agent and the one given the notice know; the share of others leaves the told one out
    assert mill["told"] == ["Maren Holt"] and set(mill["who"]) == {"Maren Holt", "Tobias Reed"}
    assert mill["value"] == pytest.approx(1 / 4) and mill["agents"] == 5
    stance = next(q for q in outcome.results["questions"] if q["name"] == "bread-stance")
    assert len(stance["agents"]) == 5 and stance["value"] is None  # nobody spoke: no stance known

    r = await client.get(f"/api/v10/townsquare/runs/{outcome.run_id}", headers=admin.headers)
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["state"] == "done" and run["seed"] == 6 and run["repeat"] == 1 and run["batch_id"] == "42"  # seed 5, repeat 1
    assert run["code_version"] and run["guild_id"] == str(outcome.guild_id) and run["ended_at"]
    assert parse_scenario(run["scenario"]).timeline[0].name == "plant"  # the scenario as run, re-readable
    assert run["results"]["questions"][0]["value"] == pytest.approx(1 / 4)
    listed = (await client.get("/api/v10/townsquare/runs?limit=5", headers=admin.headers)).json()
    assert listed[0]["id"] == str(outcome.run_id) and "scenario" not in listed[0]
    # the run's society rests once measured; the societies it paused meanwhile are live again
    society = await agents.get_society(platform, me, outcome.guild_id)
    assert society["paused"] and "ended" in society["paused_reason"]
    assert_discord_error(await client.get("/api/v10/townsquare/runs/123", headers=admin.headers), 404, 10110)
    someone = await person(platform)
    assert_discord_error(await client.get("/api/v10/townsquare/runs", headers=someone.headers), 403, 50013)
    del first


async def test_a_failing_intervention_fails_the_run_with_its_reason(platform: Platform) -> None:
    admin = await person(platform, is_admin=True)
    me = await authenticate(platform, "Bearer", admin.token)
    scenario = parse_scenario(f"name: bad {name('')}\nsociety: village\nduration: 10\ntimeline:\n"
                              "  - {kind: tell, agent: Nobody Here, fact: something happened today}\n")
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    outcome = await run_scenario(platform, me, scenario, base_dir=None, batch_id=1, arm="A", repeat=0, clock=clock, sleep=sleep,
                                 agents_=NoAgents())
    assert outcome.state == "failed" and "Unknown Agent" in (outcome.error or "")


def test_townsquare_run_runs_both_arms_and_records_them(settings: Settings, services, chroma: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real command: its own server, worker and rq worker (the fake LLM for content, the
    session's Chroma), two arms (with and without the planted fact), a JSON report, the runs table."""
    import os
    import subprocess
    import sys

    import orjson

    from .fakellm import distinct_reply

    fake = FakeLLM(reply=distinct_reply).start()
    path = tmp_path / "mill.yaml"
    path.write_text(f"""\
name: mill-{name('')}
society: village
seed: 4
sim_speed: 120
duration: 20m
timeline:
  - {{name: plant, at: 0s, kind: tell, agent: Maren Holt, fact: "The old mill reopens on Friday with a bakery inside."}}
questions:
  - {{name: mill, kind: knows, fact: the old mill reopens with a bakery, keywords: [mill, bakery]}}
  - {{name: mood, kind: sentiment, topic: bread}}
""", encoding="utf-8")
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url, "CHROMA_URL": chroma,
           "OLLAMA_HOST": fake.url, "TOWNSQUARE_DATABASE_SCHEMA": settings.database_schema or "",
           "TOWNSQUARE_REDIS_PREFIX": settings.redis_prefix + "run:", "TOWNSQUARE_DATA_DIR": str(tmp_path / "data"),
           "TOWNSQUARE_GATE_RELEVANCE_FLOOR": "0"}
    # the session's agents' tokens are sealed with its key: the run's worker reads every agent of the schema
    from townsquare.platform.core.secretbox import secret_box

    secret_box(settings)
    env["TOWNSQUARE_SECRET_KEY"] = settings.secret_key or (settings.resolved_data_dir() / "secret.key").read_text().strip()
    try:
        done = subprocess.run([sys.executable, "-m", "townsquare.platform.cli", "run", str(path), "--without", "plant", "--json",
                               "--no-progress"], env=env, capture_output=True, timeout=600)
    finally:
        fake.stop()
    assert done.returncode == 0, (done.stderr.decode()[-3000:], done.stdout.decode()[-3000:])
    report = orjson.loads(done.stdout.decode().strip().splitlines()[-1])
    assert report["arms"] == ["A", "without plant"] and [r["state"] for r in report["runs"]] == ["done", "done"]
    a, b = report["runs"]
    assert a["seed"] == b["seed"] == 4 and a["code_version"] and a["batch_id"] == b["batch_id"] == report["batch_id"]
    knows_a = next(q for q in a["results"]["questions"] if q["name"] == "mill")
    knows_b = next(q for q in b["results"]["questions"] if q["name"] == "mill")
    assert knows_a["who"][:1] == ["Maren Holt"] and knows_a["told"] == ["Maren Holt"] and knows_b["who"] == []
    assert [i["name"] for i in a["results"]["interventions"]] == ["plant"] and b["results"]["interventions"] == []
    summary = report["summary"]["mill"]
    assert set(summary["arms"]) == {"A", "without plant"} and summary["difference"]["of"] == "A - without plant"
    logs = Path(report["logs"])
    assert (logs / "run.log").exists() and (logs / "worker-1.log").exists() and (logs / "worker-2.log").exists()
    assert b"worker started" in (logs / "worker-2.log").read_bytes()
