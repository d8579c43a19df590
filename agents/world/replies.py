"""What an agent's own day says about a line it hears: asked what everyone is up to, it says
what it is doing; asked about an event, whether its routine takes it there (or what keeps it
away); told a piece of news, whether it had seen it. These are facts of the world, so a reply
made from them is true to it, where a small model asked to "answer Maren" invents plans.

The turn planner turns an `Aside` into words (agents/turn/asides.py); nothing here writes text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .life import Occurrence, WorldTime, at_minutes, current, describe_occurrence, first_person, upcoming, whereabouts, with_place
from .model import DAY_MINUTES, World
from .subjects import known_news, news_text

_ASKS_DOING = re.compile(
    r"(?i)\b(?:what(?:'s| is| are)\s+(?:every(?:one|body)|you(?:\s+all)?|people|y'all)(?:\s+else)?\s+(?:up\s+to|doing)|"
    r"what\s+are\s+you\s+up\s+to|how\s+are\s+you(?:\s+doing)?(?:\s+today)?\?|anyone\s+(?:else\s+)?(?:about|around|awake)|anyone\s+else\s+up|anyone\s+up\s*\?|how(?:'s| is)\s+(?:every(?:one|body)|your\s+day)|"
    r"what\s+have\s+you\s+been\s+up\s+to|busy\s+today\?)")
# "..., you?" asks what the listener is doing only after the speaker said what it is doing ("Busy baking. You?");
# after a view ("Vinyl, always! ... You?") it asks for the listener's view
_ASKED_BACK = re.compile(r"(?i)(?:^|[.!]\s+)(?:and\s+|how\s+about\s+|what\s+about\s+)?you\?\s*$")
_SAYS_DOING = re.compile(r"(?i)^(?:\W*\w+,\s+\w+[.!]\s+)?(?:(?:just|busy|currently|been|spent a while|out|off)\b|me\?)|\bright now\b|"
                         r"^(?:\W*\w+,\s+\w+[.!]\s+)?[a-z]+ing\b")
# "is there anything on this weekend?", "what's happening tonight?": the calendar answers
_ASKS_WHATS_ON = re.compile(r"(?i)\b(?:(?:is there|anything|something)\s+(?:\w+\s+)?(?:on|happening|going on)\b(?!\s+(?:the|my|your|a)\b)|"
                            r"what(?:'s| is)\s+(?:on|happening|going on)\b(?!\s+(?:with|in your|at your)\b)|any\s+(?:events|plans for)\b)")
_AT_EVENT = re.compile(r"(?i)\b(?:i'm at|here at|just got to|anyone (?:else )?here|who is at|who's at|come along)\b")
_ABOUT_GOING = re.compile(r"(?i)\b(?:going|go|off to|fancy|coming|come|make it|be there|attend|join)\b")
_CONTENT = re.compile(r"[a-z][a-z']{2,}")
_NOT_DISTINCT = frozenset({"the", "and", "for", "with", "from", "about", "our", "new", "old", "day", "night", "did", "you", "hear",
                           "heard", "news", "anyone", "else", "what", "that", "this", "have", "has", "just", "seen", "fancy",
                           "thoughts", "make", "know", "who", "knew", "isn't", "interesting", "good", "think", "saw", "earlier",
                           "not", "sure", "are", "was", "were", "will", "its", "it's", "there", "here", "been", "all", "any"})
# "are you coming to the meeting on Thursday?": asked about an event by name
_COMING_TO = re.compile(r"(?i)\b(?:are|will|were)\s+you\s+(?:be\s+)?(?:coming|going|off|heading)\s+to\s+(?P<what>(?:the|a|an)\s+[a-z][\w'-]*(?:\s+[a-z][\w'-]*){0,3}?)"
                        r"(?=\s+(?:on|at|this|next|tomorrow|tonight|today|later|in)\b|\s*[?.!,]|\s*$)")
NEWS_WORDS = 3  # words a line must share with a news item to be telling it ...
NEWS_SHARE = 0.4  # ... and this share of its own words (not a line that merely names the market)


@dataclass(frozen=True)
class Aside:
    kind: str  # doing | going | not_going | there | not_there | news_seen | news_unseen | news_own | unknown_event | whats_on
    what: str  # what it does now (doing, not_there), the event's title, the news headline
    place: str | None = None  # where it does it ("the bakery")
    instead: str | None = None  # what it does then: there (at the event), not_going / not_there (instead)
    tie: str | None = None  # news: where the speaker's own days take it that the news is about ("I'm at the allotments most days")


def _content(text: str) -> set[str]:
    return set(_CONTENT.findall(text.lower())) - _NOT_DISTINCT


def _names(occ: Occurrence, heard: set[str]) -> bool:
    """The line names this event: every distinctive word of its title ("Saturday market",
    "pub quiz"), at least one of them four letters or more."""
    title = _content(occ.event.title)
    return bool(title) and title <= heard and any(len(w) >= 4 for w in title)


def _plain(words: set[str]) -> set[str]:
    return {w[:-1] if w.endswith("s") and not w.endswith("ss") else w for w in words}


def _place_words(name: str) -> tuple[set[str], ...]:
    """The word sets that name a place, each on its own: what it is, its own proper name, where
    it is: "the French bakery on Quay Road" -> ({bakery}, {french}, {quay, road}); "St Aldric's
    church" -> ({church}, {aldric}); "the offices on Tech Row" -> ({office}, set(), {tech, row})."""
    at = re.search(r" (?:on|by|in|at|near|of|behind|above|beside) ", name)
    head, where = (name[:at.start()], name[at.end():]) if at else (name, "")
    proper = {w.lower().removesuffix("'s") for w in re.findall(r"\b[A-Z][a-z']{2,}", head)}
    what = {w.removesuffix("'s") for w in _content(head.lower()) if len(w) >= 4} - proper
    located = {w.lower() for w in re.findall(r"\b[A-Z][a-z']{1,}", where)}
    return _plain(what) - _COMMON, _plain(proper) - _COMMON, _plain(located)


def _tie(world: World, agent: str, news: str) -> Tie | None:
    """Where the agent's own days take it that a piece of news is about: a place of its routine
    the news names ("Frost ... on the allotments": "I'm at the allotments most days"; "A cut cable
    left Tech Row without fibre": "I'm at the offices on Tech Row most days"), or what it does
    there, by two words. Only words that tell places apart count ("harbour" is in six places'
    names in the city). A reaction from it is the agent's own, where "Interesting." is anyone's."""
    told = _plain(_content(news))
    names = {p.id: _place_words(p.name) for p in world.places}
    seen: dict[str, int] = {}
    for parts in names.values():
        for w in set().union(*parts):
            seen[w] = seen.get(w, 0) + 1
    for entry in world.routines.get(agent, ()):
        place = world.place(entry.place)
        if place is None or place.id == "home":
            continue
        when = "on " + " and ".join(d.capitalize() + "s" for d in entry.days) if entry.days else "most days"
        if any(words and words <= told for words in ({w for w in part if seen[w] <= 2} for part in names[place.id])):
            mine = re.sub(rf"\b{re.escape(agent.split()[0])}'s\b", "my", place.name)  # "my food truck on the harbour front"
            return Tie(f"I'm at {mine} {when}", place.name, when)
        does = _plain({w for w in _content(entry.doing) if len(w) >= 4 and not w.endswith("ing")}) - _COMMON
        if len(does & told) >= 2:
            doing = first_person(with_place(entry.doing, place.name), agent.split()[0])
            return Tie(f"{when[:1].upper()}{when[1:]}, I'm {doing}", place.name, when)
    return None


@dataclass(frozen=True)
class Tie:
    said: str  # "I'm at the allotments most days"
    place: str
    when: str


def _own_news(agent: str, news: str) -> bool:
    """The news is about the agent itself ("The port authority approved Pablo Reyes's design")."""
    first = agent.split()[0]
    return re.search(rf"\b(?:{re.escape(agent)}|{re.escape(first)})(?:'s)?\b", news) is not None


_COMMON = frozenset({"city", "town", "village", "ward", "tomorrow", "today", "week", "weekend", "street", "streets", "road",
                     "most", "days", "every", "people", "everyone", "local", "year", "time"})


def _doing_at(world: World, agent: str, t: WorldTime) -> tuple[str | None, str | None, Occurrence | None]:
    here = whereabouts(world, agent, t)
    return here.doing, (here.place.name if here.place else None), here.event


def aside_for(world: World, agent: str, t: WorldTime, heard: str, released: Mapping[str, int],
              follows: Callable[[str], bool], own_recent: Sequence[str] = ()) -> Aside | None:
    """What `agent`'s world at `t` lets it say about `heard` (a line someone else wrote), or None.
    `own_recent`: what the agent said lately (news it told itself is not news it "saw")."""
    words = _content(heard)
    pool = [*current(world, t), *upcoming(world, t)]
    asked, named_event = _COMING_TO.search(heard), None
    if asked is not None:  # "are you coming to the meeting?": the next one on the calendar this week, named or not
        named = {w for w in _content(asked.group("what")) if len(w) >= 4}
        named_event = next((o for o in [*current(world, t), *upcoming(world, t, 7 * DAY_MINUTES)]
                            if named and named <= _content(o.event.title)), None)
        if named_event is not None:
            pool.insert(0, named_event)
        elif named and not any(named & _content(e.title) for e in world.calendar):
            return Aside("unknown_event", asked.group("what"))  # which one? (not a made-up "yes, I'll be there")
    for occ in pool:
        if not (_names(occ, words) or occ is named_event):
            continue
        live = occ.start <= t.total < occ.end
        if live and not _AT_EVENT.search(heard) and not _ABOUT_GOING.search(heard):
            continue
        if not live and not _ABOUT_GOING.search(heard):
            continue
        when = t if live else at_minutes(occ.start, world.first_day)
        doing, place, event = _doing_at(world, agent, when)
        there = event is not None and event.key == occ.key
        if live:
            return Aside("there" if there else "not_there", occ.event.title, place, doing)
        return Aside("going", occ.event.title, place, doing) if there else Aside("not_going", occ.event.title, place, doing)
    out = [n for n in world.news if n.id in released and t.total - released[n.id] <= 2 * DAY_MINUTES]
    # an agent's "Tech Row offline? News to me." (a headline said back) is not the news told: a
    # second agent would echo the echo
    echo = any(n.title and heard.lower().startswith(n.title.lower().rstrip(".!?") + "?") for n in out)
    told = []  # the news items the line tells, the one it shares most words with first
    for item in [] if echo else out:
        shared = words & _content(news_text(item))
        if item.title and item.title.lower().rstrip(".!?") in heard.lower():  # told by its headline ("A draw on the green")
            told.append((len(shared) + 100, item))
        elif len(shared) >= NEWS_WORDS and len(shared) >= NEWS_SHARE * len(words):
            told.append((len(shared), item))
    if told:
        item = max(told, key=lambda pair: pair[0])[1]
        if any(len(_content(line) & _content(news_text(item))) >= NEWS_WORDS for line in own_recent):
            return None  # it told the others itself
        seen = follows(item.channel) and item in known_news(world, t, released, follows)
        told = news_text(item)
        if _own_news(agent, told):  # "Yes, I'd heard." from the one the news is about read as the wrong voice
            return Aside("news_own", item.title or told)
        tie = _tie(world, agent, told)
        said = tie.said if tie is not None else None
        if tie is not None and (tie.said.lower() in heard.lower() or f"i'm at {tie.place.lower()}" in heard.lower()):
            # another said it first ("That's my patch: I'm at the stalls on the square on Saturdays."): not again word for word
            said = f"I'm there {tie.when} too"
        return Aside("news_seen" if seen else "news_unseen", item.title or told, tie=said)
    if _ASKS_WHATS_ON.search(heard):  # what is on now or in the next two days, from the calendar
        soon = [*current(world, t), *upcoming(world, t, 2 * DAY_MINUTES)]
        if soon:
            return Aside("whats_on", describe_occurrence(world, soon[0], t))
    if _ASKS_DOING.search(heard) or (_ASKED_BACK.search(heard) and _SAYS_DOING.search(heard)):
        doing, place, _ = _doing_at(world, agent, t)
        if doing:
            return Aside("doing", doing, place)
    return None
