"""What an agent can talk about from the world: the event it is at or that is coming up, the
news it has seen, what it is doing now. The turn planner takes its subjects from here instead
of inventing them (a small model asked to "start a conversation" makes up parties and trips).

An agent knows only what reached it: news released to a channel it follows (it read the
message), events on the calendar (public), and its own routine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .life import WorldTime, at_minutes, current, describe_occurrence, upcoming, whereabouts, with_place
from .model import DAY_MINUTES, NewsItem, World

MAX_CONTENT = 170
RAISED_MINUTES = 180  # a subject an opener brought up anywhere in the society is not raised again for this long (simulated)
OPEN_CHANNELS = frozenset({"general"})  # where anything may come up; a subject of another topical channel (jazz night in #art) never does
_WORD = re.compile(r"[a-z][a-z']{3,}")


@dataclass(frozen=True)
class Subject:
    kind: str  # event (on now, the agent is there) | upcoming | news | routine | mind (a memory passed on: agents/turn/passing.py)
    content: str  # what the line is about, as the plan's content
    share: bool  # tell the others (share) rather than ask them (open)
    channel: str | None = None  # the channel the subject belongs to, if any


def _clip(text: str, limit: int = MAX_CONTENT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def news_text(item: NewsItem) -> str:
    title = item.title.rstrip(".!?:")
    return _clip(f"{title}: {item.content}" if title else item.content)


def news_subject(item: NewsItem) -> str:
    """The news as a subject to bring up: the headline and its first sentence, short (a long
    subject gives a small model too much to get wrong)."""
    first = re.split(r"(?<=[.!?])\s", item.content.strip(), maxsplit=1)[0].rstrip(".")
    title = item.title.rstrip(".!?:")
    return _clip(f"{title} ({first})" if title else first, 120)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower())) - {"that", "this", "with", "from", "have", "will", "about", "there", "their", "what"}


def _said(subject: str, said: Sequence[str]) -> bool:
    """The channel's recent lines already talk about this (three or more of its words)."""
    mine = _words(subject)
    return any(len(mine & _words(line)) >= 3 for line in said)


def known_news(world: World, t: WorldTime, released: Mapping[str, int], follows: Callable[[str], bool],
               window: int = DAY_MINUTES) -> list[NewsItem]:
    """News released (id -> simulated minute of release) within `window` to a channel the agent
    follows, newest first."""
    items = [n for n in world.news if n.id in released and t.total - released[n.id] <= window and follows(n.channel)]
    return sorted(items, key=lambda n: -released[n.id])


def candidates(world: World, agent: str, channel: str, t: WorldTime, released: Mapping[str, int],
               follows: Callable[[str], bool], said: Sequence[str] = (),
               raised: Mapping[str, int] | None = None) -> list[tuple[Subject, float]]:
    """Every subject the agent has for this channel now (not those of another topical channel),
    with a weight; not what the channel's recent lines, `said`, already talk about, nor what an
    opener brought up in the society lately (`raised`: subject -> simulated minute)."""
    out: list[tuple[Subject, float]] = []
    here = whereabouts(world, agent, t)

    def fits(place_id: str | None) -> bool:
        place = world.place(place_id) if place_id else None
        return place is not None and place.channel == channel

    for occ in current(world, t):
        if here.event is not None and here.event.key == occ.key:
            out.append((Subject("event", describe_occurrence(world, occ, t), True, _channel(world, occ.event.place)), 3.0))
        elif fits(occ.event.place):
            out.append((Subject("upcoming", f"who is at {describe_occurrence(world, occ, t)}?", False, channel), 1.5))
    for occ in upcoming(world, t)[:4]:
        going = whereabouts(world, agent, at_minutes(occ.start, world.first_day)).event
        if going is None or going.key != occ.key:
            continue  # "who's going to the market?" from one who then says it will miss it read as nonsense
        out.append((Subject("upcoming", f"is anyone going to {describe_occurrence(world, occ, t)}?", False,
                            _channel(world, occ.event.place)), 2.0 if fits(occ.event.place) else 0.7))
    for item in known_news(world, t, released, follows)[:3]:
        fresh = 1.0 - min(1.0, (t.total - released[item.id]) / DAY_MINUTES)
        out.append((Subject("news", f"the news: {news_subject(item)}", True, item.channel), 0.8 + 2.0 * fresh))
    # what it is doing, in its place's channel or an open one ("Busy having a nap at home" was posted in #market)
    if here.doing and here.event is None and here.place is not None and (fits(here.place.id) or channel in OPEN_CHANNELS):
        out.append((Subject("routine", _clip(with_place(here.doing, here.place.name)), True, here.place.channel),
                    1.5 if fits(here.place.id) else 1.0))
    raised = raised or {}

    def stale(s: Subject) -> bool:
        return (bool(said) and _said(s.content, said)) or (s.content in raised and t.total - raised[s.content] < RAISED_MINUTES)

    def elsewhere(s: Subject) -> bool:
        return s.channel is not None and s.channel != channel and channel not in OPEN_CHANNELS

    # what was just said here or raised in the society lately is left out, not only made rarer: the
    # same news told again and again read as a loop (a revival with nothing left asks the
    # society's own question instead)
    return [(s, w) for s, w in out if not elsewhere(s) and not stale(s)]


def _channel(world: World, place_id: str) -> str | None:
    place = world.place(place_id)
    return place.channel if place else None


def pick_subject(world: World, agent: str, channel: str, t: WorldTime, released: Mapping[str, int],
                 follows: Callable[[str], bool], rng: random.Random, said: Sequence[str] = (),
                 raised: Mapping[str, int] | None = None) -> Subject | None:
    """A subject for an opener in `channel` (seeded draw by weight), or None when the world gives
    this agent nothing to say."""
    options = candidates(world, agent, channel, t, released, follows, said, raised)
    if not options:
        return None
    return rng.choices([s for s, _ in options], weights=[w for _, w in options])[0]


def world_lines(world: World, agent: str, t: WorldTime, released: Mapping[str, int], follows: Callable[[str], bool]) -> list[str]:
    """What the agent knows of the world now, in a few short lines (a `share` in a reply picks the
    one that touches what was said)."""
    lines = [describe_occurrence(world, o, t) for o in current(world, t)]
    lines += [describe_occurrence(world, o, t) for o in upcoming(world, t)[:4]]
    lines += [news_text(n) for n in known_news(world, t, released, follows)[:4]]
    return lines


def situation(world: World, agent: str, t: WorldTime) -> str | None:
    """Where the agent is and what it does, in the third person ("Maren is at the bakery, baking
    the day's bread."), for the prompt's scene."""
    here = whereabouts(world, agent, t)
    if here.place is None or not here.doing:
        return None
    first = agent.split()[0]
    return f"{first} is at {here.place.name}, {here.doing}."
