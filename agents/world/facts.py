"""What any resident knows of its world, as statements it can answer with: the places and what
they are, the calendar's events (where and when), and its own routine. A person asking "where
can I hear live music on a weekday?" or "is there a choir I could join?" is then answered from
the world ("Theo's jazz night at the Cellar jazz club, on Wednesdays, Fridays and Saturdays,
21:00 to 01:00.", "Most days, I'm rehearsing with the city chorus, 16:00 to 22:00.") by a local
with no `knows` line for it, where it used to say "no idea". Every statement is the society
file's, so nothing is made up.

The turn matches them as it matches `knows` (agents/turn/knowing.py), after the persona's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .life import WorldTime, being, first_person
from .model import DAY_MINUTES, WEEKDAYS, Event, Place, RoutineEntry, World, clock

AHEAD_DAYS = 6  # a one-off event is told by its weekday while it is this close (and not over)


def _days(days: list[str]) -> str:
    """["wednesday", "friday"] -> "on Wednesdays and Fridays"; all seven -> "every day"."""
    if set(days) == set(WEEKDAYS):
        return "every day"
    if set(days) == set(WEEKDAYS[:5]):
        return "on weekdays"
    if set(days) == set(WEEKDAYS[5:]):
        return "at weekends"
    named = [f"{d.capitalize()}s" for d in WEEKDAYS if d in days]
    return "on " + (named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1])


def _hours(start: int, end: int) -> str:
    return f"{clock(start)} to {clock(end % DAY_MINUTES)}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1:] in ".!?" else text + "."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _after_colon(text: str) -> str:
    """A description after "The bakery: " (a name keeps its capital: "Maren's bakery on ...")."""
    first = text.split()[0] if text.split() else ""
    return text if re.search(r"['’]s$", first) else text[:1].lower() + text[1:]


def _where(title: str, place: str | None) -> str:
    """The event's title with its place, unless the title names it already ("Tobias's history walk
    from the old mill"); unlike `with_place`, one shared word is not enough ("Theo's jazz night"
    is at the Cellar jazz club)."""
    if not place:
        return title
    core = set(re.findall(r"[a-z]{3,}", re.split(r" (?:on|by|in|at|near|of|behind|above) ", place.lower().removeprefix("the "))[0]))
    return title if core <= set(re.findall(r"[a-z]{3,}", title.lower())) else f"{title} at {place}"


def _event_fact(world: World, event: Event, day: int) -> str:
    place = world.place(event.place)
    if event.every is not None:
        when = _days(list(event.every))
    else:
        when = "today" if event.day == day else "tomorrow" if event.day == day + 1 else \
            "on " + WEEKDAYS[(WEEKDAYS.index(world.first_day) + (event.day or 0)) % 7].capitalize()
    said = f"{_capital(_where(event.title, place.name if place else None))}, {when}, {_hours(event.start, event.end)}."
    return f"{said} {_sentence(_capital(event.description))}" if event.description else said


def _routine_fact(world: World, entry: RoutineEntry, who: str, own: str) -> str:
    """"Most days, I'm baking the day's bread at the bakery, 05:00 to 08:00." (its own), "Oskar is
    usually mending bicycles at his workshop behind the Plough, 09:00 to 17:00." (a neighbour's)."""
    place = world.place(entry.place)
    at = f" at {place.name}" if place and place.id != "home" and " at " not in f" {entry.doing} " else ""
    when = _days(list(entry.days)) if entry.days else "most days"
    hours = _hours(entry.start, entry.end)
    if who == own:
        return f"{_capital(when)}, I'm {first_person(being(entry.doing) + at, own)}, {hours}."
    return f"{_capital(when)}, {who} is {being(entry.doing)}{at}, {hours}."


@dataclass(frozen=True)
class Fact:
    about: str  # what a question is matched against
    says: str  # the statement said in answer
    placed: bool = False  # it says where (a place, an event, a day somewhere): it answers "where ...?"
    names: str | None = None  # a word the question must ask for as it is ("bookshop" for "the Lantern bookshop")


def _head(name: str) -> str:
    """What a place is, without where it is: "the co-working space above the fish market" is
    matched as a co-working space (not by "where can I buy fish?")."""
    return re.split(r" (?:on|by|in|at|near|of|behind|above|beside|along) ", name)[0]


def _place_fact(place: Place) -> Fact:
    if place.description:
        said = f"{_capital(place.name)}: {_after_colon(_sentence(place.description))}"
        return Fact(f"{_capital(_head(place.name))}: {_after_colon(_sentence(place.description))}", said, True)
    # a bare name is matched by what it is called, so by its kind of place said as such: "the offices on
    # Tech Row" is no answer to "where's the post office?", "the bouldering gym" none to "a gym routine?"
    head = _head(place.name)
    return Fact(_capital(head), f"There's {place.name}.", True, head.split()[-1].lower())


def _local(world: World, agent: str, day: int) -> tuple[Fact, ...]:
    own = agent.split()[0]
    facts = [_place_fact(p) for p in world.places if p.id != "home"]
    events = [_capital(re.sub(rf"\b{re.escape(own)}'s\b", "my", _event_fact(world, e, day))) for e in world.calendar
              if e.day is None or day <= e.day <= day + AHEAD_DAYS]
    facts += [Fact(e, e, True) for e in events]
    for name, entries in world.routines.items():
        # a neighbour's day where people can find it (at home is nobody's business)
        facts += [Fact(said, said, entry.place != "home") for entry in entries if name == agent or entry.place != "home"
                  for said in [_routine_fact(world, entry, name.split()[0], own)]]
    return tuple(facts)


def local_knowledge(world: World | None, agent: str, t: WorldTime | None = None) -> tuple[Fact, ...]:
    """The statements about its world that `agent` can answer a question with at `t` (see the
    module docstring; a one-off event only while it is near and not over); none without a
    world. Cached per world, agent and day."""
    if world is None:
        return ()
    day = t.day if t is not None else 0
    key = (id(world), agent, day)
    if key not in _CACHE or _CACHE[key][0] is not world:
        if len(_CACHE) >= 4096:
            _CACHE.clear()
        _CACHE[key] = (world, _local(world, agent, day))
    return _CACHE[key][1]


_CACHE: dict[tuple[int, str, int], tuple[World, tuple[Fact, ...]]] = {}  # the world is kept so its id stays its own
