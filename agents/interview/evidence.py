"""What an interviewed agent can answer from, decided in code before the model says a word.

An interview question is answered from one basis, chosen from the retrieval scores and the
question's shape (a small model asked to "answer from memory" invents when memory holds nothing,
so whether the agent knows is not the model's call):

- `self`: how it is and what it cares about (its persona and mood);
- `memory`: memories whose cosine similarity to the question reaches the floor (for an open
  "any news?" question: its most important recent memories, whatever their similarity);
- `known` / `view`: a statement of its persona's `knows` that answers the question, or one of its
  `views` on it (agents/turn/knowing.known_or_view: the same match as in its turns), said as it is;
- `person`: how it gets on with a member the question names (its relationship record);
- `opinion`: a view on one of its own interests, claiming no news;
- `unknown`: none of these: the answer says it has not heard about it.

Reading never changes the memory: `Memories.search` ranks without marking anything as
accessed (a turn's recall refreshes recency; an interview must leave the society as it was).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..memory.model import Memory
from ..turn.knowing import asks_opinion
from ..turn.text import words

Similar = Callable[[str, str], float]  # the cosine similarity of two texts' embeddings

BASES = ("self", "memory", "known", "view", "person", "opinion", "unknown")

NEWS_IMPORTANCE = 5.0  # an open "any news?" is answered from memories at least this important
_SEARCHED = 8  # memories ranked per question (the best `k` of those above the floor are used)

_SELF = re.compile(
    r"(?i)\b(?:how are you|how(?:'s| is| has) your (?:day|week|mood|morning|evening)|how do you feel(?! about)|how are you feeling|"
    r"are you (?:ok|okay|well|happy|sad|tired|busy|lonely)|tell me about yourself|who are you|what do you do\b|"
    r"what (?:do|did) you (?:like|love|enjoy|care about)|what are you (?:into|up to|working on)|what(?:'s| is) your (?:job|work|name)|"
    r"your (?:hobbies|interests)|what makes you happy)")
_NEWS = re.compile(
    r"(?i)\b(?:any(?:thing)? news|what(?:'s| is) new|what(?:'s| is) (?:going on|happening)|what(?:'ve| have) you heard|"
    r"heard anything (?:new|interesting)|what happened (?:today|lately|recently|this week)|anything (?:new|interesting) (?:lately|today))")
_HEARD = re.compile(r"(?i)\b(?:heard|hear|told|news)\b")
_RELATION = re.compile(r"(?i)\b(?:think (?:of|about)|feel about|get (?:on|along)|like|friends?|trust|know|close to|opinion of)\b")
_OPINION = re.compile(r"(?i)\b(?:what do you think|your (?:opinion|view|advice)|how do you feel about|do you (?:like|enjoy|prefer)|"
                      r"favou?rite|would you recommend|should (?:i|we)|any (?:advice|tips?)|what would you|best (?:way|time|place))\b")


@dataclass(frozen=True)
class Recalled:
    """A memory the answer may use, with its retrieval scores (None where it was not searched for)."""

    memory: Memory
    score: float | None = None
    similarity: float | None = None

    def scores(self) -> dict[str, float]:
        return {k: v for k, v in (("total", self.score), ("similarity", self.similarity)) if v is not None}


@dataclass(frozen=True)
class Evidence:
    basis: str  # one of BASES
    memories: tuple[Recalled, ...] = ()  # what the answer may use, best first
    people: tuple[tuple[int, str], ...] = ()  # members the question names (id, display name)
    interest: str | None = None  # `opinion`: the interest the question touches
    statement: str | None = None  # `known` / `view`: the persona's statement or view that answers it

    @property
    def knows(self) -> bool:
        return self.basis != "unknown"


def named_people(question: str, members: Mapping[str, int], own_id: int | None = None) -> list[tuple[int, str]]:
    """Members the question names by full or first name (a capitalised whole word: "will" is not Will)."""
    found: dict[int, str] = {}
    for name, user_id in sorted(members.items(), key=lambda item: -len(item[0])):
        if user_id == own_id or user_id in found or not name.strip():
            continue
        first = name.split()[0]
        for candidate in dict.fromkeys((name, first)):
            if len(candidate) >= 2 and re.search(rf"(?<![\w@]){re.escape(candidate)}(?![\w])", question):
                found[user_id] = name
                break
    return list(found.items())


def asks_about_self(question: str) -> bool:
    return bool(_SELF.search(question))


def asks_for_news(question: str) -> bool:
    return bool(_NEWS.search(question))


def touched_interest(question: str, interests: Sequence[str], similar: Similar | None = None, floor: float = 1.0) -> str | None:
    """The persona's interest the question is about: one sharing a content word with it, else the
    one most similar to it (embeddings) if that reaches `floor`."""
    asked = {w for w in words(question) if len(w) > 3}
    shared = next((i for i in interests if {w for w in words(i) if len(w) > 3} & asked), None)
    if shared or similar is None or not interests:
        return shared
    score, best = max((similar(question, i), i) for i in interests)
    return best if score >= floor else None


def choose(question: str, relevant: Sequence[Recalled], people: Sequence[tuple[int, str]], interests: Sequence[str], *,
           similar: Similar | None = None, floor: float = 1.0, known: tuple[str | None, bool] = (None, False)) -> Evidence:
    """The basis of the answer (see the module's docstring), in that order of precedence.
    `known`: what the persona knows or thinks that answers the question (`known_or_view`)."""
    if asks_about_self(question):
        return Evidence("self", tuple(relevant[:2]), tuple(people))
    if relevant:
        return Evidence("memory", tuple(relevant), tuple(people))
    statement, is_view = known
    # "have you heard about the mill?" asks what it was told, which a view or an old fact does not
    # answer; a view answers only a question of opinion
    if statement and not asks_for_news(question) and not _HEARD.search(question) and (not is_view or _OPINION.search(question)
                                                                                      or asks_opinion(question)):
        return Evidence("view" if is_view else "known", (), tuple(people), statement=statement)
    if people and _RELATION.search(question):
        return Evidence("person", (), tuple(people))
    interest = touched_interest(question, interests, similar, floor) if _OPINION.search(question) else None
    if interest:
        return Evidence("opinion", (), tuple(people), interest)
    return Evidence("unknown", (), tuple(people))


async def gather(memories: Any, agent_id: int, question: str, *, members: Mapping[str, int], interests: Sequence[str],
                 floor: float, k: int = 4, similar: Similar | None = None,
                 known: tuple[str | None, bool] = (None, False)) -> Evidence:
    """Searches the agent's memory (`memories`: agents.memory.remember.Memories) for the question
    and for each member it names (those come after: their scores rank another search), and
    chooses the basis. Nothing is written."""
    people = named_people(question, members, agent_id)
    if asks_for_news(question):
        recent = await memories.recent(agent_id, 50)
        notable = sorted((m for m in recent if m.importance >= NEWS_IMPORTANCE), key=lambda m: (-m.importance, -m.created_at))
        relevant = [Recalled(m) for m in notable[:k]]
    else:
        found = await memories.search(agent_id, question, k=_SEARCHED)
        relevant = [Recalled(s.memory, s.score, s.similarity) for s in found if s.similarity >= floor]
    seen = {r.memory.id for r in relevant}
    for person_id, _ in people[:2]:  # what it remembers about the people asked about, if it bears on the question
        for s in await memories.search(agent_id, question, k=2, about=person_id):
            if s.memory.id not in seen and s.similarity >= floor * 0.75:
                relevant.append(Recalled(s.memory, s.score, s.similarity))
                seen.add(s.memory.id)
    return choose(question, relevant[:k], people, interests, similar=similar, floor=floor, known=known)

