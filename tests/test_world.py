"""The world of a society (agents/world): the `world:` section of a society file is validated
with errors that name the field; the calendar, routines, attendance and presence follow the
simulated clock; turns take their subjects from what the agent knows of it; and the worker's
runtime releases the news feed exactly once, through the action layer, on a fake clock and
across restarts and workers."""

from __future__ import annotations

import asyncio
import copy
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import ValidationError

from townsquare.agents.memory.remember import open_memories
from townsquare.agents.mind.clock import FakeClock, SimClock
from townsquare.agents.mind.policy import AgentInfo, ChannelState, Msg, PolicyConfig, SocietyState, TurnPolicy
from townsquare.agents.society.persona import Society, bundled_societies, load_society
from townsquare.agents.turn.knowing import known_or_view
from townsquare.agents.turn.plan import Heard, plan_opener, plan_reply
from townsquare.agents.world.facts import local_knowledge
from townsquare.agents.world.life import at_minutes, current, due_news, presence, whereabouts, world_time
from townsquare.agents.world.model import World
from townsquare.agents.turn.passing import pass_on_lines
from townsquare.agents.world.subjects import candidates, known_news, pick_subject, situation, world_lines
from townsquare.platform.actions import agents, news
from townsquare.platform.actions.context import Platform
from townsquare.platform.actions.users import authenticate
from townsquare.platform.core.config import Settings
from townsquare.worker.runtime.world import WorldRuntime

from .helpers import Actor, assert_discord_error, name, person

DAY = 24 * 60


def hm(day: int, hh: int, mm: int = 0, first_day: str = "friday") -> Any:
    return at_minutes(day * DAY + hh * 60 + mm, first_day)


@pytest.fixture(scope="module")
def village() -> World:
    world = load_society("village").world
    assert world is not None
    return world


@pytest.fixture()
def document() -> dict[str, Any]:
    return yaml.safe_load(bundled_societies()["village"].read_text(encoding="utf-8"))


# --- the society file --------------------------------------------------------------------------


@pytest.mark.parametrize("society", ["village", "city"])
def test_bundled_societies_have_worlds(society: str) -> None:
    spec = load_society(society)
    world = spec.world
    assert world is not None and world.news_source
    assert len(world.places) >= 10 and len(world.calendar) >= 6
    assert {a.name for a in spec.agents} == set(world.routines)  # a routine for every agent
    assert len([n for n in world.news if n.day <= 1]) >= 12  # a dozen items over the first two days
    # a week's calendar: something on most days of the first week, recurring and one-off events
    busy = sum(any(e.on(day, at_minutes(day * DAY, world.first_day).weekday) for e in world.calendar) for day in range(7))
    assert busy >= 5, busy
    assert any(e.every for e in world.calendar) and any(e.day is not None for e in world.calendar)
    channels = {c.name for c in spec.channels}
    assert {n.channel for n in world.news} <= channels and {p.channel for p in world.places if p.channel} <= channels


@pytest.mark.parametrize("change, field", [
    (lambda w: w["calendar"][0].update(place="casino"), "world.calendar[0].place"),
    (lambda w: w["news"][2].update(channel="gossip"), "world.news[2].channel"),
    (lambda w: w["places"][1].update(channel="gossip"), "world.places[1].channel"),
    (lambda w: w["routines"]["Maren Holt"][1].update(place="moon"), "world.routines.Maren Holt[1].place"),
    (lambda w: w["routines"].update({"Nobody Here": []}), "world.routines"),
    (lambda w: w["calendar"][1].update(attendees=["Oskar Lind", "Ghost"]), "world.calendar[1].attendees"),
    (lambda w: w["news"][1].update(id=w["news"][0]["id"]), "world.news[1].id"),
])
def test_a_bad_reference_names_its_field(document: dict[str, Any], change: Any, field: str) -> None:
    change(document["world"])
    with pytest.raises(ValidationError) as error:
        Society.model_validate(document)
    assert field in str(error.value), str(error.value)


@pytest.mark.parametrize("path, value, words", [
    (("news", 0, "time"), "25:00", "not a time of day"),
    (("calendar", 0, "start"), "noon", "not a time of day"),
    (("calendar", 0, "every"), ["funday"], "every"),
    (("routines", "Tobias Reed", 0, "end"), "07:00", "nothing happens in no time"),
    (("news", 3, "day"), -1, "day"),
    (("first_day", ), "someday", "first_day"),
])
def test_a_bad_value_names_its_field(document: dict[str, Any], path: tuple[Any, ...], value: Any, words: str) -> None:
    target = document["world"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as error:
        Society.model_validate(document)
    where = ".".join(str(p) for p in ("world", *path[:-1]))
    text = str(error.value)
    assert where in text and words in text, text


def test_an_event_is_one_off_or_recurring(document: dict[str, Any]) -> None:
    document["world"]["calendar"][0]["day"] = 3  # it has `every` too
    with pytest.raises(ValidationError, match="exactly one of `day`"):
        Society.model_validate(document)
    del document["world"]["calendar"][0]["every"], document["world"]["calendar"][0]["day"]
    with pytest.raises(ValidationError, match="world.calendar.0"):
        Society.model_validate(document)


def test_times_read_as_yaml_writes_them(document: dict[str, Any]) -> None:
    """YAML reads an unquoted 10:30 as 630 (base 60): the same minute of the day."""
    text = yaml.safe_dump(document).replace("time: '13:30'", "time: 13:30")
    assert "time: 13:30" in text
    world = Society.model_validate(yaml.safe_load(text)).world
    assert world is not None and next(n for n in world.news if n.id == "bus-cuts").time == 13 * 60 + 30


# --- the world at a moment ---------------------------------------------------------------------


def test_routines_events_and_presence_follow_the_clock(village: World) -> None:
    saturday_10 = hm(1, 10)
    assert saturday_10.weekday == "saturday"
    maren = whereabouts(village, "Maren Holt", saturday_10)  # the day's own entry wins over the everyday one
    assert maren.place is not None and maren.place.id == "market" and maren.event is not None
    assert maren.event.event.id == "saturday-market"
    assert whereabouts(village, "Maren Holt", hm(0, 10)).place.id == "bakery"  # type: ignore[union-attr]  # a Friday
    assert presence(village, "Maren Holt", "market", saturday_10) > 1.0 > presence(village, "Maren Holt", "garden", saturday_10)
    # listed attendees are at the match whatever their routine says; nobody is at it an hour later
    match = hm(1, 15, 30)
    assert [o.event.id for o in current(village, match)] == ["football-match"]
    assert whereabouts(village, "Oskar Lind", match).event.event.id == "football-match"  # type: ignore[union-attr]
    assert whereabouts(village, "Oskar Lind", hm(1, 17, 30)).event is None
    # a routine past midnight, and nowhere in particular when the routine says nothing
    assert whereabouts(village, "Oskar Lind", hm(2, 1)).doing == "tinkering with an old radio"
    assert whereabouts(village, "Maren Holt", hm(2, 1)).place is None
    assert presence(village, "Maren Holt", "general", hm(2, 1)) == 1.0
    assert situation(village, "Priya Nair", hm(0, 12)) == "Priya is at the pharmacy, working at the pharmacy counter."


def test_the_society_clock_counts_days_from_the_founding() -> None:
    clock = FakeClock()
    sim = SimClock(clock, epoch=clock.now(), speed=96.0, start_hour=9.0)  # a simulated day in 15 real minutes
    founded = clock.now() + 10 * 900  # a second society founded ten simulated days after the first
    t = world_time(sim, founded, "friday", now=founded)
    assert (t.day, t.minute, t.weekday) == (0, 9 * 60, "friday")  # its own day 0, on the shared time of day
    clock.advance(10 * 900 + 900 * 1.5)
    t = world_time(sim, founded, "friday")
    assert (t.day, t.minute // 60, t.weekday) == (1, 21, "saturday")


def test_news_is_due_in_order_and_known_only_by_followers(village: World) -> None:
    t = hm(0, 12)
    due = [n.id for n in due_news(village, t)]
    assert due == ["mill-for-sale", "market-news", "frost-warning"]
    released = {n.id: n.at for n in due_news(village, t)}
    gardener = known_news(village, t, released, lambda c: c in ("garden", "market"))
    assert [n.id for n in gardener] == ["frost-warning", "market-news"]  # newest first, not #general's
    assert known_news(village, hm(1, 12), released, lambda c: True) == []  # a day later it is no longer news
    assert known_news(village, t, {}, lambda c: True) == []  # due, but not out yet: nobody knows it


def test_subjects_come_from_the_world(village: World) -> None:
    t = hm(1, 10)  # Saturday morning, the market is on
    released = {n.id: n.at for n in due_news(village, t)}
    options = candidates(village, "Maren Holt", "market", t, released, lambda c: True)
    kinds = {s.kind for s, _ in options}
    assert {"event", "news"} <= kinds
    everything = candidates(village, "Maren Holt", "general", t, released, lambda c: True)  # #general takes any subject
    assert {"event", "news"} <= {s.kind for s, _ in everything}
    # who's going to an event is asked by one who goes (the football match is Tobias's, not Maren's)
    assert "upcoming" not in {s.kind for s, _ in everything}
    everything = candidates(village, "Tobias Reed", "general", t, released, lambda c: True)
    assert [s.content for s, _ in everything if s.kind == "upcoming"] == [
        "is anyone going to the football match against Hartwell at the village green today, 15:00 to 17:00?"]
    event = next(s for s, _ in options if s.kind == "event")
    assert event.share and "Saturday market" in event.content and "until 13:00" in event.content
    routine = candidates(village, "Priya Nair", "general", hm(0, 12), {}, lambda c: True)
    assert any(s.kind == "routine" and "pharmacy counter" in s.content for s, _ in routine)
    picked = {pick_subject(village, "Maren Holt", "market", t, released, lambda c: True, random.Random(i)).kind  # type: ignore[union-attr]
              for i in range(40)}
    assert picked >= {"event", "news"}
    # an opener on a world subject shares it (not a made-up one); an upcoming event is asked about
    plan = plan_opener(load_society("village").agents[0], event.content, seed=3, news=event.share)
    assert plan.act == "share" and plan.content == event.content and "Saturday market" in plan.narration()
    ask = next(s for s, _ in everything if s.kind == "upcoming")
    assert plan_opener(load_society("village").agents[0], ask.content, seed=3, news=ask.share).act == "open"


def test_what_the_channel_just_talked_about_is_not_brought_up_again(village: World) -> None:
    t = hm(0, 12)
    released = {n.id: n.at for n in due_news(village, t)}
    said = ["Town Crier: The old mill is for sale — The owners of the old mill by the river have put it up for sale."]
    fresh = dict((s.content, w) for s, w in candidates(village, "Tobias Reed", "general", t, released, lambda c: True))
    after = dict((s.content, w) for s, w in candidates(village, "Tobias Reed", "general", t, released, lambda c: True, said))
    mill = next(c for c in fresh if "old mill is for sale" in c)
    assert mill not in after
    assert all(after[c] == fresh[c] for c in fresh if c != mill)  # other subjects keep their weight


def test_what_an_opener_brought_up_lately_is_not_brought_up_in_another_channel(village: World) -> None:
    t = hm(0, 12)
    released = {n.id: n.at for n in due_news(village, t)}
    fresh = dict((s.content, w) for s, w in candidates(village, "Tobias Reed", "general", t, released, lambda c: True))
    mill = next(c for c in fresh if "old mill is for sale" in c)
    lately = dict((s.content, w) for s, w in candidates(village, "Tobias Reed", "general", t, released, lambda c: True, (),
                                                        {mill: t.total - 30}))
    assert mill not in lately and all(lately[c] == fresh[c] for c in fresh if c != mill)
    long_ago = dict((s.content, w) for s, w in candidates(village, "Tobias Reed", "general", t, released, lambda c: True, (),
                                                          {mill: t.total - 600}))
    assert long_ago[mill] == fresh[mill]  # hours later it may come up again


def test_a_subject_is_raised_in_its_own_channel_or_the_open_one(village: World) -> None:
    t = hm(0, 12)
    released = {n.id: n.at for n in due_news(village, t)}

    def weights(channel: str) -> dict[str, tuple[str | None, float]]:
        return {s.content: (s.channel, w) for s, w in candidates(village, "Tobias Reed", channel, t, released, lambda c: True)}

    general, history = weights("general"), weights("history")
    assert [c for c, (home, _) in general.items() if home not in (None, "general")]  # the market's, the garden's: all in #general
    assert all(home in (None, "history", "general") for home, _ in history.values())  # ... none in #history


def test_a_share_in_a_reply_is_about_what_the_agent_knows(village: World) -> None:
    t = hm(0, 12)
    lines = world_lines(village, "Ines Alvarez", t, {n.id: n.at for n in due_news(village, t)}, lambda c: True)
    assert any("Frost on Friday night" in line for line in lines)
    ines = load_society("village").agents[2]
    heard = Heard("Maren Holt", "My seedlings are coming up nicely, though the nights are cold.", human=False)
    shares = [plan_reply(ines, heard, seed=s, world=lines) for s in range(60)]
    shared = [p for p in shares if p.act == "share"]
    assert shared and all("Frost" in p.content for p in shared)
    assert all(p.act != "share" or p.content != "Frost" for p in [plan_reply(ines, heard, seed=s) for s in range(60)])


def test_routines_decide_who_revives_a_channel(village: World) -> None:
    """The policy asks the world who is around: at the market on Saturday morning the market's
    regulars open #market far more often than the rest (who are elsewhere)."""
    spec = load_society("village")
    clock = FakeClock()
    state = SocietyState(SimClock(clock, epoch=clock.now(), speed=1.0, start_hour=9.0))
    for i, persona in enumerate(spec.agents):
        state.set_agent(AgentInfo(100 + i, 1, persona.model_copy(update={"home_channels": []})))
    names = {100 + i: p.name for i, p in enumerate(spec.agents)}
    policy = TurnPolicy(PolicyConfig(revive_idle_seconds=60))
    saturday = hm(1, 10)

    def openers(with_world: bool) -> dict[str, int]:
        state.presence = (lambda a, c: presence(village, a.persona.name, c.name, saturday)) if with_world else None
        counts: dict[str, int] = {}
        for i in range(300):
            channel = state.set_channel(ChannelState(5000 + i, 1, "market", None))
            channel.last_at, channel.last_message_id = clock.now() - 3600, 10_000 + i
            for d in policy.revivals(state):
                counts[names[d.agent_id]] = counts.get(names[d.agent_id], 0) + 1
            del state.channels[channel.id]
        return counts

    plain, world = openers(False), openers(True)
    elsewhere = lambda c: sum(v for n, v in c.items() if n not in ("Maren Holt", "Ines Alvarez", "Priya Nair")) / sum(c.values())  # noqa: E731
    assert elsewhere(plain) > 0.1 and elsewhere(world) < 0.6 * elsewhere(plain), (plain, world)  # Tobias is in the archive
    # and a message in #market is picked up the same way: the roll weighs presence too
    msg = Msg(1, 5000, 1, 999, "Sam", False, "lovely tomatoes today", clock.now())
    state.set_channel(ChannelState(5000, 1, "market", None))
    state.observe(msg)
    assert state.around(state.agents[100], state.channels[5000]) > 1.0


# --- the news route and the release, through the real stack ------------------------------------


async def _auth(platform: Platform, actor: Actor) -> Any:
    return await authenticate(platform, "Bearer", actor.token)


def _small_world_file(folder: Path, document: dict[str, Any]) -> Path:
    """A copy of the village with a small news feed: two items on day 0, one on day 1."""
    doc = copy.deepcopy(document)
    suffix = name("")[:6]
    doc["guild"] = f"Ashford {suffix}"
    renamed = {}
    for agent in doc["agents"]:
        new = f"{agent['name'].split()[0]} {suffix}"
        renamed[agent["name"]] = new
        agent["name"] = new
    world = doc["world"]
    world["routines"] = {renamed[k]: v for k, v in world["routines"].items()}
    for event in world["calendar"]:
        event["attendees"] = [renamed[a] for a in event.get("attendees", [])]
    world["news_source"] = "Crier Test"
    world["news"] = [
        {"id": "first", "day": 0, "time": "08:00", "channel": "general", "title": "Early", "content": "The square is swept."},
        {"id": "second", "day": 0, "time": "10:00", "channel": "market", "content": "Plums at the market."},
        {"id": "third", "day": 1, "time": "09:00", "channel": "general", "title": "Later", "content": "Rain tomorrow."},
    ]
    path = folder / f"world-{suffix}.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def _seed(platform: Platform, admin: Actor, path: Path) -> tuple[int, dict[str, int], dict[str, Any]]:
    guild_id = await agents.do_found_society(platform, admin.id, load_society(path), name=str(path))
    me = await _auth(platform, admin)
    rows = await agents.society_channels(platform, [guild_id])
    society = await agents.get_society(platform, me, guild_id)
    return guild_id, {r.name: r.id for r in rows if r.name}, society


def founded_at(society: dict[str, Any]) -> float:
    from townsquare.worker.runtime.worker import parse_time

    return parse_time(society["created_at"], 0.0)


def _runtime(platform: Platform, settings: Settings, clock: FakeClock, society: dict[str, Any], guild_id: int,
             memories: Any = None) -> WorldRuntime:
    founded = founded_at(society)
    sim = SimClock(clock, epoch=founded, speed=1.0, start_hour=9.0)
    runtime = WorldRuntime(platform, platform.redis, settings.redis_prefix, sim, clock, lambda: memories)
    runtime.load({guild_id: society}, lambda s: founded)
    return runtime


async def _crier_messages(client: httpx.AsyncClient, admin: Actor, channel_id: int, crier: str) -> list[dict[str, Any]]:
    history = (await client.get(f"/api/v10/channels/{channel_id}/messages?limit=50", headers=admin.headers)).json()
    return [m for m in history if m["author"]["username"] == crier]


async def test_the_feed_is_released_once_on_the_society_clock(platform: Platform, settings: Settings, client: httpx.AsyncClient,
                                                             tmp_path: Path, document: dict[str, Any]) -> None:
    admin = await person(platform, is_admin=True)
    guild_id, channels, society = await _seed(platform, admin, _small_world_file(tmp_path, document))
    crier = news.source_username(guild_id)
    members = (await client.get(f"/api/v10/guilds/{guild_id}/members?limit=100", headers=admin.headers)).json()
    source = next(m["user"] for m in members if m["user"]["username"] == crier)  # made at seed time, a member like the agents
    assert source["bot"] and source["global_name"] == "Crier Test"

    clock = FakeClock(founded_at(society))  # the society clock at its founding: day 0, 09:00
    runtime = _runtime(platform, settings, clock, society, guild_id)
    by_name = lambda g, n: channels.get(n) if g == guild_id else None  # noqa: E731
    assert await runtime.release(by_name, set()) == 1  # founded at 09:00 of day 0: the 08:00 item is due, the 10:00 one not
    assert await runtime.release(by_name, set()) == 0
    first = await _crier_messages(client, admin, channels["general"], crier)
    assert [m["content"] for m in first] == ["Early — The square is swept."] and first[0]["nonce"].startswith("nw")
    clock.advance(3600)  # 10:00
    assert await runtime.release(by_name, {guild_id}) == 0  # a paused society's world waits
    assert await runtime.release(by_name, set()) == 1
    # a restart (a fresh runtime knows nothing) and two workers at once: nothing twice
    clock.advance(24 * 3600)
    restarted = [_runtime(platform, settings, clock, society, guild_id) for _ in range(2)]
    await restarted[0].sync(by_name)
    assert set(restarted[0].worlds[guild_id].released) == {"first", "second"}
    posted = await asyncio.gather(*(r.release(by_name, set()) for r in restarted))
    assert sum(posted) == 1
    assert len(await _crier_messages(client, admin, channels["general"], crier)) == 2
    assert len(await _crier_messages(client, admin, channels["market"], crier)) == 1
    # each release audit-logged once, by no one (the schedule)
    log = (await client.get(f"/api/v10/townsquare/security-log?guild_id={guild_id}&action_type=208", headers=admin.headers)).json()
    assert sorted(e["options"]["item"] for e in log["entries"]) == ["first", "second", "third"]
    assert all(e["user_id"] is None for e in log["entries"])
    # what the agents know: the runtime's subjects now include the news, for followers of #general
    agent = AgentInfo(1, guild_id, load_society(Path(society["name"])).agents[0])
    assert any("Rain tomorrow" in line for line in restarted[1].lines(agent))


async def test_attending_an_event_is_remembered_once(platform: Platform, settings: Settings, tmp_path: Path,
                                                     document: dict[str, Any]) -> None:
    admin = await person(platform, is_admin=True)
    path = _small_world_file(tmp_path, document)
    guild_id, _, society = await _seed(platform, admin, path)
    me = await _auth(platform, admin)
    cast = {a["name"]: int(a["id"]) for a in await agents.list_agents(platform, me, guild_id)}
    spec = load_society(path)
    infos = [AgentInfo(cast[p.name], guild_id, p) for p in spec.agents]
    memories = open_memories(settings)
    clock = FakeClock(founded_at(society))
    runtime = _runtime(platform, settings, clock, society, guild_id, memories)
    clock.advance(24 * 3600 + 3600)  # Saturday 10:00: the market is on
    maren, tobias = infos[0], infos[1]
    written = await runtime.attend(infos, lambda a: True)
    assert written == 3  # Maren, Ines and Priya are at their stalls; Tobias is in the archive, Oskar in his workshop
    assert await runtime.attend(infos, lambda a: True) == 0
    again = _runtime(platform, settings, clock, society, guild_id, memories)  # a restarted worker
    assert await again.attend(infos, lambda a: True) == 0
    remembered = [m.text for m in await memories.recent(maren.id, 10)]
    assert any(t.startswith("I was at the Saturday market at the stalls on the square") for t in remembered), remembered
    went = next(t for t in remembered if t.startswith("I was at"))
    assert all("the Saturday market" in line for line in pass_on_lines(went, "Maren"))  # brought up later, as what is on its mind
    assert not any("Saturday market" in m.text for m in await memories.recent(tobias.id, 10))
    clock.advance(5 * 3600)  # 15:30: the match, Tobias and Oskar are listed for it
    assert await runtime.attend(infos, lambda a: a.id != infos[3].id) == 1  # a paused Oskar does not go


async def test_the_news_route(platform: Platform, client: httpx.AsyncClient, tmp_path: Path, document: dict[str, Any]) -> None:
    admin = await person(platform, is_admin=True)
    guild_id, channels, _ = await _seed(platform, admin, _small_world_file(tmp_path, document))
    url = f"/api/v10/townsquare/societies/{guild_id}/news"
    r = await client.post(url, json={"channel_id": str(channels["garden"]), "content": "The well is dry.", "title": "Water"},
                          headers=admin.headers)
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["content"] == "Water — The well is dry." and sent["channel_id"] == str(channels["garden"])
    assert sent["author"]["username"] == news.source_username(guild_id) and sent["author"]["bot"]
    log = (await client.get(f"/api/v10/townsquare/security-log?guild_id={guild_id}&action_type=208", headers=admin.headers)).json()
    entry = next(e for e in log["entries"] if e["target_id"] == sent["id"])
    assert entry["user_id"] == str(admin.id) and entry["options"]["channel_id"] == str(channels["garden"])
    listed = (await client.get(url, headers=admin.headers)).json()
    assert listed[0]["message_id"] == sent["id"] and listed[0]["channel"] == "garden"
    # without a title, the content as it is; a society without a world gets a Town Crier
    other_admin = admin
    plain_guild = await agents.do_found_society(platform, admin.id, load_society("village").model_copy(update={
        "world": None, "agents": [a.model_copy(update={"name": f"{a.name.split()[0]} {name('')[:6]}"})
                                  for a in load_society("village").agents[:1]]}), name("society"))
    plain_general = next(c["id"] for c in (await client.get(f"/api/v10/guilds/{plain_guild}/channels", headers=admin.headers)).json()
                         if c["name"] == "general")
    r = await client.post(f"/api/v10/townsquare/societies/{plain_guild}/news", json={"channel_id": plain_general, "content": "Hello."},
                          headers=other_admin.headers)
    assert r.status_code == 201 and r.json()["content"] == "Hello." and r.json()["author"]["global_name"] == "Town Crier"

    # bad input: 4xx in Discord's shape, never a 500
    human = await person(platform)
    assert_discord_error(await client.post(url, json={"channel_id": str(channels["general"]), "content": "x"}, headers=human.headers),
                         403, 50013)
    assert_discord_error(await client.post(url, json={"content": "no channel"}, headers=admin.headers), 400, 50035)
    assert_discord_error(await client.post(url, json={"channel_id": str(channels["general"]), "content": "   "}, headers=admin.headers),
                         400, 50035)
    assert_discord_error(await client.post(url, json={"channel_id": str(channels["general"]), "content": "x", "title": 5},
                                           headers=admin.headers), 400, 50035)
    assert_discord_error(await client.post(url, json={"channel_id": str(channels["general"]), "content": "x" * 5000},
                                           headers=admin.headers), 400, 50035)
    assert_discord_error(await client.post(url, json={"channel_id": plain_general, "content": "wrong society"}, headers=admin.headers),
                         404, 10003)
    assert_discord_error(await client.post("/api/v10/townsquare/societies/12345/news", json={"channel_id": plain_general, "content": "x"},
                                           headers=admin.headers), 404, 10004)
    assert_discord_error(await client.post(url, content=b"{not json", headers={**admin.headers, "content-type": "application/json"}), 400)


async def test_a_running_worker_releases_news_and_opens_on_world_subjects(platform: Platform, settings: Settings, server: Any,
                                                                          client: httpx.AsyncClient, tmp_path: Path,
                                                                          document: dict[str, Any]) -> None:
    from townsquare.worker.runtime.worker import AgentWorker

    from townsquare.agents.turn.asides import first_person

    from .fakellm import FakeLLM
    from .test_worker import worker_settings

    admin = await person(platform, is_admin=True)
    path = _small_world_file(tmp_path, document)
    guild_id, channels, _ = await _seed(platform, admin, path)
    spec = load_society(path)
    assert spec.world is not None
    doings = [e.doing for entries in spec.world.routines.values() for e in entries]
    llm = FakeLLM().start()
    worker = AgentWorker(worker_settings(settings, server, llm.url, revive_idle_seconds=1.0), platform, name=name("w"))
    await worker.start()
    try:
        async def released() -> Any:
            return await _crier_messages(client, admin, channels["general"], news.source_username(guild_id))

        from .helpers import wait_for

        assert [m["content"] for m in await wait_for(released, timeout=30)] == ["Early — The square is swept."]

        # what the world gives an agent to say is said in its own words: the routine in the first
        # person, the news, the event asked about (made from the plan: the model is not asked)
        said = [first_person(d) for d in doings] + [n.content.rstrip(".").lower() for n in spec.world.news] + \
            [e.title.lower() for e in spec.world.calendar]

        async def opened_on_the_world() -> Any:
            found = []
            for channel_id in channels.values():
                history = (await client.get(f"/api/v10/channels/{channel_id}/messages?limit=50", headers=admin.headers)).json()
                found += [m["content"] for m in history if m["author"].get("bot") and m["author"]["username"] != news.source_username(guild_id)
                          and any(phrase in m["content"].lower() for phrase in said)]
            return found or None

        assert await wait_for(opened_on_the_world, timeout=40)
    finally:
        await worker.stop()
        llm.stop()


async def test_the_world_as_the_dashboard_reads_it(platform: Platform, client: httpx.AsyncClient, tmp_path: Path,
                                                   document: dict[str, Any]) -> None:
    admin = await person(platform, is_admin=True)
    path = _small_world_file(tmp_path, document)
    guild_id, channels, _ = await _seed(platform, admin, path)
    r = await client.get(f"/api/v10/townsquare/societies/{guild_id}/world", headers=admin.headers)
    assert r.status_code == 200, r.text
    w = r.json()
    assert w["world"] and w["news_source"] == "Crier Test" and w["time"]["weekday"] in ("friday", "saturday", "sunday", "monday")
    assert len(w["agents"]) == 5 and {a["name"] for a in w["agents"]} == {a.name for a in load_society(path).agents}
    assert w["upcoming"] and all({"title", "place", "day", "start", "end"} <= set(e) for e in w["upcoming"])
    assert {n["id"] for n in w["scheduled"]} <= {"first", "second", "third"}
    human = await person(platform)
    assert_discord_error(await client.get(f"/api/v10/townsquare/societies/{guild_id}/world", headers=human.headers), 403)
    assert_discord_error(await client.get("/api/v10/townsquare/societies/777/world", headers=admin.headers), 404, 10004)


def test_what_an_agent_is_doing_comes_up_in_its_places_channel_or_the_open_one(village: World) -> None:
    t = hm(0, 12)
    released = {n.id: n.at for n in due_news(village, t)}
    for channel in ("general", "market", "garden", "history"):
        for agent in ("Maren Holt", "Tobias Reed", "Ines Alvarez", "Oskar Lind", "Priya Nair"):
            here = whereabouts(village, agent, t)
            routine = [s for s, _ in candidates(village, agent, channel, t, released, lambda c: True) if s.kind == "routine"]
            home = village.place(here.place.id).channel if here.place is not None else None
            assert not routine or channel == "general" or channel == home, (agent, channel, routine)


# --- what any resident knows of its world ------------------------------------------------------


def _shared(a: str, b: str) -> float:
    """Word overlap (a stand-in for the embedding relevance; the test chooses the wording)."""
    wa, wb = {w.strip("?.,:!'s") for w in a.lower().split() if len(w) > 3}, {w.strip("?.,:!'s") for w in b.lower().split() if len(w) > 3}
    return len(wa & wb) / (len(wa) * len(wb)) ** 0.5 if wa and wb else 0.0


def test_a_persons_question_is_answered_from_what_any_local_knows_of_its_world(village: World) -> None:
    says = [f.says for f in local_knowledge(village, "Ines Alvarez", hm(0, 10))]
    assert "The pub quiz at the Plough, on Wednesdays, 20:00 to 22:30. Six rounds, a picture round and a meat pie for the winners." in says
    assert any(s.startswith("Most days, I'm ") for s in says)  # its own day, in the first person
    assert any(s.startswith("On Saturdays, Oskar is mending bikes") for s in says)  # a neighbour's, where people find him
    assert not any(" is " in s and "at home" in s for s in says)  # a neighbour at home is nobody's business
    tobias = [f.says for f in local_knowledge(village, "Tobias Reed", hm(0, 10))]
    assert any(s.startswith("My history walk from the old mill, on Sunday, 14:00 to 15:30.") for s in tobias)  # its own event
    # a one-off event is told while it is near and not over: the match on day 1, not a week later
    assert any("football match" in s for s in says)
    assert not any("football match" in s for s in (f.says for f in local_knowledge(village, "Ines Alvarez", hm(8, 10))))

    nobody = load_society("village").agents[0].model_copy(update={"knows": [], "views": []})
    facts = local_knowledge(village, nobody.name, hm(0, 10))
    quiz = known_or_view(nobody, "@Ines Alvarez when is the pub quiz at the Plough?", _shared, 0.3, facts)
    assert quiz == (says[says.index(next(s for s in says if s.startswith("The pub quiz")))], False)
    # where the asker is, is not what it asks about: the village hall does not answer "a doctor in the village?"
    assert known_or_view(nobody, "Is there a doctor in the village hall?", _shared, 0.2, facts)[0] is not None
    assert known_or_view(nobody, "Is there a doctor in the village?", _shared, 0.2, facts) == (None, False)
    assert known_or_view(nobody, "The pub quiz at the Plough is fun.", _shared, 0.3, facts) == (None, False)  # not asked
    assert known_or_view(nobody, "When is the pub quiz at the Plough?", _shared, 0.3) == (None, False)  # no world: nothing

    city = load_society("city")
    assert city.world is not None
    citizen = city.agents[0].model_copy(update={"knows": [], "views": []})
    here = local_knowledge(city.world, citizen.name, hm(0, 10))
    # a place known only by its name answers one asking for that kind of place, not for a word of it
    assert known_or_view(citizen, "Is there a good bookshop?", _shared, 0.3, here) == ("There's the Lantern bookshop.", False)
    assert known_or_view(citizen, "What's a good bouldering gym routine?", _shared, 0.3, here)[0] != "There's the bouldering gym."
