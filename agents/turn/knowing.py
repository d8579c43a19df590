"""What a persona knows, matched to what is asked: the statement of its `knows` that answers a
question (sentence embeddings for the subject, the question's shape for the kind of answer), the
member who knows when the speaker does not, whether a line passes a statement on, and which
questions are about the world (answerable only by who knows) rather than about the one asked."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence

from ..society.persona import Persona
from ..world.facts import Fact
from .text import stems, unmention

_ASKS_WHEN = re.compile(r"(?i)\b(?:when|what time|how (?:early|late|often|long|soon)|which day|what day)\b")
_SAYS_WHEN = re.compile(r"(?i)\d|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|weekdays?|"
                        r"january|february|march|april|may|june|july|august|september|october|november|december|spring|"
                        r"summer|autumn|winter|morning|afternoon|evening|night|noon|midnight|dawn|dusk|daily|weekly|monthly|"
                        r"hours?|days?|weeks?|months?|years?|every|after|before|until|once|twice|early|late|first|last|frost)\b")


_ASKS_WHERE = re.compile(r"(?i)\b(?:where|which (?:\w+ )?(?:shop|place|pub|caf[eé]|bar|restaurant|street|park|market|stall|club)|"
                         r"what(?:'s| is) a good (?:place|spot|shop))\b")
_SAYS_WHERE = re.compile(r"\b(?:[Aa]t|[Oo]n|[Ii]n|[Bb]y|[Nn]ear|[Ff]rom|[Bb]ehind|[Oo]pposite) (?:the |a )?(?:(?!(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|"
                         r"April|May|June|July|August|September|October|November|December)\b)[A-Z]\w+|"
                         r"(?:\w+ )?(?:shop|market|square|harbour|street|road|lane|park|stall|hall|church|mill|river|bridge|pub|"
                         r"bakery|station|library|museum|green|quay|dock|club|cafe|café|corner|allotments?|orchard|woods?|hill))")
_WEEKDAY = re.compile(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b")


def best_known(knows: Sequence[str], text: str, relevance: Callable[[str, str], float], floor: float) -> str | None:
    """Of what a persona knows, the statement that best answers `text`, if it fits well enough.
    Sentence embeddings match the subject ("bread"), not the kind of answer asked for, so: a
    question about when is answered only by a statement that says when, one about where only by
    one that names a place; a statement about another day of the week than the one asked about
    does not answer it; among statements that fit, the one sharing more of the question's words
    wins ("what time does the bakery open?": "the bakery opens at seven")."""
    return best_fact([Fact(k, k) for k in knows], text, relevance, floor)


def best_fact(facts: Sequence[Fact], text: str, relevance: Callable[[str, str], float], floor: float) -> str | None:
    """`best_known` over facts matched by what they are about and answered with what they say (the
    world's facts: agents/world/facts.py)."""
    scored = [(score, f.says) for score, f in _fitting(facts, text, relevance) if score >= floor and _asks_for(f, text)]
    best = max(scored, default=None, key=lambda s: s[0] + _SHARED_WORD_BONUS * min(3, len(stems(s[1]) & stems(text))))
    return best[1] if best is not None else None


_ASKS_OPINION = re.compile(r"(?i)\b(?:best|favou?rite|worst|underrated|overrated|most (?:beautiful|interesting|fun|boring|annoying)|should (?!i\b)|should i (?:read|watch|see|listen to|try|cook|bake|buy|play)\b|"
                           r"would you|good idea|bad idea|predictions?|"
                           r"what do you (?:think|reckon)|which (?:\w+ )?(?:is|are) better|prefer|deserves?|worth (?:reading|seeing|"
                           r"watching|hearing|a visit))\b|\w \bor\b \w[^?]*\?")


def asks_opinion(question: str) -> bool:
    """A question of taste or judgement ("best bread for a Sunday?", "vinyl or streaming?", "should
    the quiz move to Thursdays?"): a view answers it better than a fact about its subject."""
    return bool(_ASKS_OPINION.search(unmention(question)))


def known_or_view(persona: Persona, text: str, relevance: Callable[[str, str], float], floor: float,
                  local: Sequence[Fact] = (), *, person: bool = False) -> tuple[str | None, bool]:
    """What the persona has to say to `text`: a statement it knows that answers it, or a view of
    its own on it (its `views`: "Broad beans, always first." to "what are you planting first?"),
    and whether it is a view. A view answers only a question (one that ends the line: not
    "Sofia, the mural? Planning to, yes."); to a question of taste the view comes first ("the
    reading circle meets on Thursdays" does not say which book to pick next), to any other the
    fact does. `local`: what it knows of its world (agents/world/facts.py), the answer when its
    own statements and views have none (matched without where the asker is: "a doctor in the
    village?" is not about the village hall). `person`: a person asked (not another agent)."""
    asked = unmention(text).rstrip().endswith("?")
    # something to add to a line that asks nothing must be about it, not near it (a piece of news about the
    # harbour run starting at the fish market got the co-working space above the fish market's hours)
    known = best_known(persona.knows, text, relevance, floor if asked else floor + STATEMENT_MARGIN)
    view = None
    # a person's practical question is not answered with a view ("how early should I come to get bread?" got
    # "A white loaf for Sunday breakfast...", "slugs ate my lettuces, what should I do?" a view on slugs and
    # snails); another member's question is (the society's questions are what views were written for)
    practical = person and not asks_opinion(text) and asks_for_facts(text)
    if persona.views and asked and (known is None or asks_opinion(text)) and not practical:
        view = view_on(persona, text, relevance, floor)
        if view is not None:
            return view, True
    if known is None and asked and local and asks_where_or_when(text):
        known = best_fact(local, without_locative(text), relevance, floor)
    return known, False


STATEMENT_MARGIN = 0.1  # how much better a statement must fit a line that is not a question (see known_or_view)


def view_on(persona: Persona, text: str, relevance: Callable[[str, str], float], floor: float) -> str | None:
    """The persona's view that bears on `text` (a question it asks, a piece of news it is told)."""
    return best_known(persona.views, text, relevance, floor) if persona.views else None


_SHARED_WORD_BONUS = 0.03  # per word in common (up to three): a tie-break among statements on the same subject


# what the world's facts answer: where, when, whether there is one ("how do I start a compost heap?" is
# not answered by when someone turns the compost at the allotments)
_WHERE_OR_WHEN = re.compile(r"(?i)\b(?:where|when|what time|which day|is there|are there|anywhere|what(?:'s| is) open|"
                            r"(?:best|good|nice|cheap|decent) (?:\w+ ){0,2}(?:in town|around here|round here|nearby|near here|"
                            r"to (?:eat|go|visit|drink|swim|run|walk|sit|work)))\b")


def asks_where_or_when(question: str) -> bool:
    """A question a place, an event or someone's day can answer (see `_WHERE_OR_WHEN`)."""
    text = unmention(question)
    return bool(_WHERE_OR_WHEN.search(text) or _ASKS_WHERE.search(text) or _ASKS_WHEN.search(text))


# the word that names a kind of place ends what is asked for ("a good second-hand bookshop?", "the best
# gallery in town?"), not "a gym routine?"
_AFTER_KIND = r"(?=\s*(?:[?.!,;:]|$|\s+(?:in|at|on|near|around|nearby|here|for|to|with|that|which|where|open|this|today|tonight)\b))"


def _asks_for(fact: Fact, text: str) -> bool:
    return fact.names is None or re.search(rf"(?i)\b{re.escape(fact.names)}{_AFTER_KIND}", text) is not None


# where the asker is, not what it asks about: "a doctor in the village?" is not about the village hall
# (not "in the village hall?")
_LOCATIVE = re.compile(r"(?i)(?:\b(?:in|around|round|near|about)\s+(?:the\s+)?(?:village|city|town|area|ward|neighbourhood)|"
                       r"\b(?:around|round|near)\s+here|\bnearby)" + _AFTER_KIND)


def without_locative(question: str) -> str:
    """The question without where the asker is ("is there a doctor in the village?" -> "is there
    a doctor ?"): what it asks about, for matching and for naming it."""
    return " ".join(_LOCATIVE.sub(" ", question).split()).replace(" ?", "?")


def _fitting(facts: Sequence[Fact], text: str, relevance: Callable[[str, str], float]) -> list[tuple[float, Fact]]:
    """(cosine, fact) for the facts that may answer `text` at all."""
    text = unmention(text)  # "@Oskar Lind is the bus running?": the name is not what is asked about
    if _ASKS_WHEN.search(text):
        facts = [f for f in facts if _SAYS_WHEN.search(f.says)]
    if _ASKS_WHERE.search(text):
        facts = [f for f in facts if f.placed or _SAYS_WHERE.search(f.says)]
    asked_days = set(_WEEKDAY.findall(text.lower()))
    if asked_days:  # "open on Sunday?" is not answered by what happens on Saturdays
        facts = [f for f in facts if not (set(_WEEKDAY.findall(f.says.lower())) - asked_days)]
    return [(relevance(f.about, text), f) for f in facts]


def carries(line: str, known: str, asked: str) -> bool:
    """Whether a line passes on what `known` says beyond the question's own words ("basil dies
    from cold nights and wet roots" asked "my basil keeps dying": it names cold, roots, the
    windowsill or watering: two words and at least `CARRIED_SHARE` of them), not merely its
    subject ("I'm going to eat a bowl of basil!")."""
    new = stems(known) - stems(asked)
    return len(stems(line) & new) >= max(min(2, len(new)), math.ceil(CARRIED_SHARE * len(new)))


CARRIED_SHARE = 0.4  # of what a statement says beyond the question, a line passing it on names this much at least


def expert_for(question: str, others: Iterable[Persona], relevance: Callable[[str, str], float], floor: float) -> str | None:
    """The name of the member, among `others`, who knows something that best answers `question`."""
    best: tuple[float, str] | None = None
    question = unmention(question)
    for other in others:
        known = best_known(other.knows, question, relevance, floor)
        if known is not None:
            score = relevance(known, question)
            if best is None or score > best[0]:
                best = (score, other.name)
    return best[1] if best else None


_ABOUT_YOU = re.compile(r"(?i)\b(?:you|your|yours|you're|youre|yourself|u)\b")
_ASKS_YOUR_VIEW_OF = re.compile(r"(?i)\b(?:do you (?:think|reckon|know)|you think|you reckon|would you say|"
                                r"(?:can|could) you tell me|any of you|do you happen to know)\b")
_SOCIAL = re.compile(r"(?i)(?:^\s*(?:@\S+\s+)?(?:anyone|anybody|who(?:'s| is))(?: else)? (?:awake|around|up|here|there|online|about)\b|"
                     r"\b(?:any (?:news|gossip)|what(?:'s| is) (?:new|up|happening|going on|the news)|how(?:'s| is| are) "
                     r"(?:it going|things|everything|life|everyone|the day)|what(?:'s| is| are) (?:every(?:one|body)|people|you all)"
                     r"(?: else)? (?:up to|doing|\w+ing\b)|\b(?:anyone|anybody|who(?:'s| is))(?: else)? (?:up for|in\b|game|fancy))\b)")


def asks_for_facts(question: str) -> bool:
    """A question about the world (where, when, why, how to...) rather than about the person asked
    ("how are you?", "what do you like to cook?") or company ("anyone else awake?"): one that
    only a speaker who knows can answer without making something up."""
    text = _ASKS_YOUR_VIEW_OF.sub(" ", unmention(question))
    return not _ABOUT_YOU.search(text) and not _SOCIAL.search(unmention(question))
