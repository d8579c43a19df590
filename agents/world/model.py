"""The world a society lives in: places, a calendar, a news feed and routines (the `world:`
section of a society file).

Times are simulated: `day` counts from the society's founding (day 0), a time of day is
"HH:MM". YAML reads an unquoted `10:30` as the number 630 (base 60), which is the same time in
minutes since midnight, so both spellings work (`"08:00"` must be quoted: a leading zero is not
a number to YAML). Every reference (a place, a channel, an agent) is checked, and an error
names the field it is about ("world.routines.Maren Holt[2].place: ...").
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
DAY_MINUTES = 24 * 60
MAX_DAY = 366  # one-off events and news within the society's first year

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ChannelRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[a-z0-9_\-]+$")]
_TIME = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def minutes(value: Any, *, end: bool = False) -> int:
    """A time of day as minutes since midnight ("08:30" -> 510; YAML's 8:30 arrives as 510 already).
    "24:00" (1440) is allowed as an end."""
    if isinstance(value, bool):
        raise ValueError("a time of day is written \"HH:MM\"")
    if isinstance(value, int):
        found = value
    elif isinstance(value, str) and _TIME.match(value.strip()):
        hours, mins = _TIME.match(value.strip()).groups()  # type: ignore[union-attr]
        found = int(hours) * 60 + int(mins)
    else:
        raise ValueError(f"{value!r} is not a time of day: write \"HH:MM\" (00:00 to 23:59)")
    if not 0 <= found <= (DAY_MINUTES if end else DAY_MINUTES - 1):
        raise ValueError(f"{value!r} is not a time of day: write \"HH:MM\" (00:00 to 23:59)")
    return found


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


class _Timed(BaseModel):
    """Something with a start and an end time of day (an end before the start runs past midnight)."""

    model_config = ConfigDict(extra="forbid")
    start: int
    end: int

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: Any) -> int:
        return minutes(value)

    @field_validator("end", mode="before")
    @classmethod
    def _end(cls, value: Any) -> int:
        return minutes(value, end=True)

    @model_validator(mode="after")
    def _not_empty(self) -> _Timed:
        if self.start == self.end % DAY_MINUTES:
            raise ValueError(f"start and end are both {clock(self.start)}: nothing happens in no time")
        return self

    def covers(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # past midnight


class Place(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    name: Text
    channel: ChannelRef | None = None  # where talk about this place happens: people here are "around" that channel
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""


class Event(_Timed):
    """A calendar entry: one-off (`day`) or recurring (`every`: weekdays, "daily", "weekdays", "weekends")."""

    id: Id
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
    place: Id
    day: Annotated[int, Field(ge=0, le=MAX_DAY)] | None = None
    every: list[Weekday] | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    attendees: Annotated[list[str], Field(max_length=200)] = []  # agents who go whatever their routine says

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Any:
        groups = {"daily": list(WEEKDAYS), "weekdays": list(WEEKDAYS[:5]), "weekends": list(WEEKDAYS[5:])}
        if isinstance(value, str):
            return groups.get(value.strip().lower(), [value.strip().lower()])
        return value

    @model_validator(mode="after")
    def _when(self) -> Event:
        if (self.day is None) == (self.every is None):
            raise ValueError("give exactly one of `day` (a one-off event) or `every` (recurring)")
        if self.every is not None and not self.every:
            raise ValueError("`every` names no day")
        return self

    def on(self, day: int, weekday: str) -> bool:
        return self.day == day if self.day is not None else weekday in (self.every or ())


class NewsItem(BaseModel):
    """Released to `channel` by the society's news source at `day`, `time` (simulated)."""

    model_config = ConfigDict(extra="forbid")
    id: Id
    day: Annotated[int, Field(ge=0, le=MAX_DAY)]
    time: int
    channel: ChannelRef
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    content: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=1000)]

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> int:
        return minutes(value)

    @property
    def at(self) -> int:
        """Simulated minutes since day 0's midnight."""
        return self.day * DAY_MINUTES + self.time


class RoutineEntry(_Timed):
    """Where an agent is and what it does from `start` to `end`; `days` limits it to some weekdays
    (an entry for the day wins over an everyday one)."""

    place: Id
    doing: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=120)]
    days: list[Weekday] = []

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        return Event._every(value) if isinstance(value, str) else value


class World(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_day: Weekday = "monday"  # the weekday of day 0 (the founding)
    news_source: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32,
                                                  pattern=r"^[A-Za-z0-9_.\- ]+$")] = "Town Crier"
    places: Annotated[list[Place], Field(max_length=100)] = []
    calendar: Annotated[list[Event], Field(max_length=200)] = []
    news: Annotated[list[NewsItem], Field(max_length=500)] = []
    routines: dict[str, Annotated[list[RoutineEntry], Field(max_length=24)]] = {}

    @model_validator(mode="after")
    def _references(self) -> World:
        for kind, items in (("places", self.places), ("calendar", self.calendar), ("news", self.news)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.id in seen:
                    raise ValueError(f"world.{kind}[{i}].id: {item.id!r} is used twice")
                seen.add(item.id)
        places = {p.id for p in self.places}
        for i, event in enumerate(self.calendar):
            if event.place not in places:
                raise ValueError(f"world.calendar[{i}].place: unknown place {event.place!r} (places: {', '.join(sorted(places)) or 'none'})")
        for name, entries in self.routines.items():
            for i, entry in enumerate(entries):
                if entry.place not in places:
                    raise ValueError(f"world.routines.{name}[{i}].place: unknown place {entry.place!r} "
                                     f"(places: {', '.join(sorted(places)) or 'none'})")
        return self

    def place(self, place_id: str) -> Place | None:
        return next((p for p in self.places if p.id == place_id), None)


def check_world(world: World | None, info: ValidationInfo) -> World | None:
    """The world against the rest of the society file: its channels and agents exist. (Runs as the
    `world` field's validator; the fields before it are in `info.data` when they were valid.)"""
    if world is None:
        return None
    channels = {c.name for c in info.data.get("channels") or []}
    cast = info.data.get("agents") or []
    agents = {a.name for a in cast}
    if len({a.username for a in cast}) != len(cast):
        return world  # the cast's own error (names must be unique) says what is wrong first
    if channels:
        for i, place in enumerate(world.places):
            if place.channel is not None and place.channel not in channels:
                raise ValueError(f"world.places[{i}].channel: unknown channel {place.channel!r}")
        for i, item in enumerate(world.news):
            if item.channel not in channels:
                raise ValueError(f"world.news[{i}].channel: unknown channel {item.channel!r}")
    if agents:
        for name in world.routines:
            if name not in agents:
                raise ValueError(f"world.routines: {name!r} is not an agent of this society")
        for i, event in enumerate(world.calendar):
            unknown = [a for a in event.attendees if a not in agents]
            if unknown:
                raise ValueError(f"world.calendar[{i}].attendees: {', '.join(map(repr, unknown))} not agents of this society")
    return world
