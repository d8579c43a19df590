"""The world at a moment: what day and time it is, which events are on, where each agent is and
what it is doing, which news is out. Pure functions of the world and a simulated time, so a
test drives them with numbers and the worker with the society clock.

The simulated time of a society counts from its founding day: `WorldTime.day` 0 is the day the
society was founded (on the shared simulation clock, so time of day agrees with the agents'
rhythms), and its weekday is `world.first_day`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..mind.clock import SimClock
from .model import DAY_MINUTES, WEEKDAYS, Event, NewsItem, Place, RoutineEntry, World, clock

HERE, ELSEWHERE = 1.6, 0.6  # presence in a channel: at a place that belongs to it, at a place that belongs to another


@dataclass(frozen=True)
class WorldTime:
    day: int  # since the founding day (0)
    minute: int  # of the day, 0..1439
    weekday: str

    @property
    def total(self) -> int:
        """Minutes since the founding day's midnight."""
        return self.day * DAY_MINUTES + self.minute

    def plus(self, minutes: int, first_day: str) -> WorldTime:
        return at_minutes(self.total + minutes, first_day)


def at_minutes(total: int, first_day: str) -> WorldTime:
    day, minute = divmod(max(0, int(total)), DAY_MINUTES)
    return WorldTime(day, minute, WEEKDAYS[(WEEKDAYS.index(first_day) + day) % 7])


def world_time(sim: SimClock, founded_at: float, first_day: str, now: float | None = None) -> WorldTime:
    """The society's simulated time on the shared clock: days counted from the day it was founded."""
    founding_day = int(sim_seconds_at(sim, founded_at) // 86_400)
    seconds = sim_seconds_at(sim, sim.clock.now() if now is None else now)
    return at_minutes(int(seconds // 60) - founding_day * DAY_MINUTES, first_day)


def sim_seconds_at(sim: SimClock, real: float) -> float:
    return sim.start_hour * 3600.0 + max(0.0, real - sim.epoch) * sim.speed


@dataclass(frozen=True)
class Occurrence:
    """One day's instance of a calendar event."""

    event: Event
    day: int
    start: int  # minutes since day 0's midnight
    end: int

    @property
    def key(self) -> str:
        return f"{self.event.id}@{self.day}"

    def on_at(self, t: WorldTime) -> bool:
        return self.start <= t.total < self.end


def occurrences(world: World, first: int, last: int) -> list[Occurrence]:
    """Events happening on days first..last (inclusive), in order of start."""
    out = []
    for day in range(max(0, first), last + 1):
        weekday = WEEKDAYS[(WEEKDAYS.index(world.first_day) + day) % 7]
        for event in world.calendar:
            if event.on(day, weekday):
                start = day * DAY_MINUTES + event.start
                end = day * DAY_MINUTES + event.end + (DAY_MINUTES if event.end <= event.start else 0)
                out.append(Occurrence(event, day, start, end))
    return sorted(out, key=lambda o: (o.start, o.event.id))


def current(world: World, t: WorldTime) -> list[Occurrence]:
    return [o for o in occurrences(world, t.day - 1, t.day) if o.on_at(t)]


def upcoming(world: World, t: WorldTime, within_minutes: int = DAY_MINUTES) -> list[Occurrence]:
    """Events starting after `t` and within the next `within_minutes`."""
    return [o for o in occurrences(world, t.day, t.day + 1 + within_minutes // DAY_MINUTES)
            if t.total < o.start <= t.total + within_minutes]


@dataclass(frozen=True)
class Whereabouts:
    place: Place | None
    doing: str | None
    event: Occurrence | None = None  # the event it is at, if any


def _entry(entries: Iterable[RoutineEntry], t: WorldTime) -> RoutineEntry | None:
    entries = list(entries)
    for entry in entries:  # the day's own entries win over everyday ones
        if entry.days and t.weekday in entry.days and entry.covers(t.minute):
            return entry
    return next((e for e in entries if not e.days and e.covers(t.minute)), None)


def whereabouts(world: World, agent: str, t: WorldTime) -> Whereabouts:
    """Where the agent is and what it does at `t`: at an event it is listed for, else where its
    routine puts it (attending whatever event is on at that place)."""
    now = current(world, t)
    for occ in now:
        if agent in occ.event.attendees:
            return Whereabouts(world.place(occ.event.place), f"at {occ.event.title}", occ)
    entry = _entry(world.routines.get(agent, ()), t)
    if entry is None:
        return Whereabouts(None, None)
    event = next((o for o in now if o.event.place == entry.place), None)
    return Whereabouts(world.place(entry.place), entry.doing, event)


def presence(world: World, agent: str, channel: str, t: WorldTime) -> float:
    """How much an agent is "around" a channel now: more at a place that belongs to it, less at a
    place that belongs to another channel, as usual elsewhere (at home, no routine)."""
    place = whereabouts(world, agent, t).place
    if place is None or place.channel is None:
        return 1.0
    return HERE if place.channel == channel else ELSEWHERE


def due_news(world: World, t: WorldTime) -> list[NewsItem]:
    """News items whose release time has come, oldest first."""
    return sorted((n for n in world.news if n.at <= t.total), key=lambda n: (n.at, n.id))


def with_place(doing: str, place: str | None) -> str:
    """The doing with its place, named once ("sorting old parish records at the archive"); a
    doing that names its place already (a word of it: "watering the rooftop garden", place "the
    rooftop garden on Block C"; "delivering parcels across the city", "the city streets"; or says
    where: "serving at the bakery counter") stands alone."""
    if not place or " at " in f" {doing} ":
        return doing
    core = re.split(r" (?:on|by|in|at|near|of|behind) ", place.lower().removeprefix("the "))[0]
    named = {w for w in re.findall(r"[a-z]{4,}", core)} & set(re.findall(r"[a-z]{4,}", doing.lower()))
    if named:  # "chasing a story for the Harbour Gazette" needs no "at the Harbour Gazette newsroom"
        return doing
    # streets are not a point: "driving the night taxi on the city streets", not "at the city streets"
    return f"{doing} {'on' if re.search(r'(?:streets|roads|road|street)$', place.lower()) else 'at'} {place}"


def first_person(doing: str, own: str = "") -> str:
    """A routine, written about the persona, as the persona says it ("selling bread at her
    market stall" -> "selling bread at my market stall"; Oskar's "at Oskar's workshop" -> "at my
    workshop")."""
    doing = re.sub(rf"\b{re.escape(own)}'s\b", "my", doing) if own else doing
    return re.sub(r"\b(?:his|her|their)\b", "my", doing[:1].lower() + doing[1:])


def being(doing: str) -> str:
    """What one "is" while doing it: "baking bread", "at the pub quiz", "out on an evening walk"."""
    first = doing.split()[0] if doing.split() else ""
    return doing if first.endswith("ing") or first == "at" else f"out on {doing}"


def describe_occurrence(world: World, occ: Occurrence, t: WorldTime) -> str:
    """"the Saturday market on the square (08:00 to 13:00)", with "today"/"tomorrow"/the weekday
    when it is not on now."""
    place = world.place(occ.event.place)
    where = with_place(occ.event.title, place.name if place else None)[len(occ.event.title):]  # "... walk from the old mill": once
    hours = f"{clock(occ.event.start)} to {clock(occ.event.end % DAY_MINUTES)}"
    if occ.on_at(t):
        return f"{occ.event.title}{where}, on now until {clock(occ.event.end % DAY_MINUTES)}"
    when = "today" if occ.day == t.day else "tomorrow" if occ.day == t.day + 1 else \
        f"on {WEEKDAYS[(WEEKDAYS.index(world.first_day) + occ.day) % 7].capitalize()}"
    return f"{occ.event.title}{where} {when}, {hours}"
