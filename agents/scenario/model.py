"""What a scenario is: a society, a model, a seed, a clock, a timeline of interventions and the
questions to measure. One schema serves the scenario file (YAML), the admin route that applies a
single intervention (`POST /api/v10/townsquare/societies/{guild_id}/interventions`, a timeline
entry as JSON) and `townsquare run`, so a scenario and an administrator change the world the same
way.

Times are durations ("90s", "15m", "2h", "1d 6h", or a number of seconds). A timeline entry's
`at` is simulated time since the run started (the society clock: real seconds x sim_speed);
`at_real` gives real seconds instead.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from ..society.persona import ChannelName, Persona

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_duration(value: Any) -> float:
    """Seconds from "90s", "15m", "2h", "1d 6h", "1.5h" or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a text like 90s, 15m, 2h, 1d 6h")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or a text like 90s, 15m, 2h, 1d 6h")
    text = value.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip():
        raise ValueError(f"{value!r} is not a duration (e.g. 90s, 15m, 2h, 1d 6h)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# an agent named by its persona name (as in the society file) or by its id
AgentRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), BeforeValidator(
    lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v)]
Stance = Annotated[float, Field(ge=-1.0, le=1.0)]


class _Entry(BaseModel):
    """What every timeline entry has: when it happens and a name (for `--without NAME`)."""

    model_config = ConfigDict(extra="forbid")
    name: Short | None = None
    at: Duration | None = None  # simulated time since the run started
    at_real: Duration | None = None  # or real seconds since the run started

    @model_validator(mode="after")
    def _one_time(self) -> "_Entry":
        if self.at is not None and self.at_real is not None:
            raise ValueError("give `at` (simulated) or `at_real` (real seconds), not both")
        return self

    def real_offset(self, sim_speed: float) -> float:
        """Real seconds after the run's start at which this entry applies."""
        if self.at_real is not None:
            return self.at_real
        return (self.at or 0.0) / max(sim_speed, 1e-9)


class Tell(_Entry):
    """Tell an agent a fact: a memory of it, as if it had heard it (importance 1..10)."""

    kind: Literal["tell"]
    agent: AgentRef
    fact: Text
    importance: Annotated[float, Field(ge=1, le=10)] = 9.0


class News(_Entry):
    """Publish a news item to a channel (the world's news action)."""

    kind: Literal["news"]
    channel: Short
    content: Text
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None


class AddAgent(_Entry):
    kind: Literal["add_agent"]
    persona: Persona
    state: Literal["active", "paused", "muted"] = "active"


class RemoveAgent(_Entry):
    kind: Literal["remove_agent"]
    agent: AgentRef
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None


class SetAgentState(_Entry):
    """Pause, mute or resume an agent."""

    kind: Literal["pause_agent", "mute_agent", "resume_agent"]
    agent: AgentRef
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None


class ChangeAgent(_Entry):
    """Change what an agent is like: traits (merged), interests, stances on topics (merged), bio, style."""

    kind: Literal["change_agent"]
    agent: AgentRef
    traits: dict[Literal["openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"],
                 Annotated[float, Field(ge=0, le=1)]] | None = None
    interests: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]],
                         Field(max_length=12)] | None = None
    stances: dict[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)], Stance] | None = None
    bio: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=600)] | None = None
    style: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] | None = None
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _something(self) -> "ChangeAgent":
        if not self.persona_changes():
            raise ValueError("change_agent needs at least one of traits, interests, stances, bio, style")
        return self

    def persona_changes(self) -> dict[str, Any]:
        return {k: v for k, v in (("traits", self.traits), ("interests", self.interests), ("stances", self.stances),
                                  ("bio", self.bio), ("style", self.style)) if v is not None}


class OpenChannel(_Entry):
    kind: Literal["open_channel"]
    channel: ChannelName
    topic: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1024)] = ""


class CloseChannel(_Entry):
    """Close a channel: nobody but administrators may post in it any more (it stays readable)."""

    kind: Literal["close_channel"]
    channel: Short
    reason: Annotated[str, StringConstraints(max_length=300)] | None = None


class InjectDocument(_Entry):
    """A text whose claims (its sentences) become news known to the chosen agents: each is told
    each claim. `path` is read relative to the scenario file (the route takes `text` only)."""

    kind: Literal["inject_document"]
    path: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] | None = None
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)] | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    agents: Annotated[list[AgentRef], Field(min_length=1, max_length=500)] | Literal["all"] = "all"
    importance: Annotated[float, Field(ge=1, le=10)] = 7.0
    max_claims: Annotated[int, Field(ge=1, le=100)] = 20

    @model_validator(mode="after")
    def _one_source(self) -> "InjectDocument":
        if (self.path is None) == (self.text is None):
            raise ValueError("give the document's `text` or its `path`, one of them")
        return self


Intervention = Annotated[Union[Tell, News, AddAgent, RemoveAgent, SetAgentState, ChangeAgent, OpenChannel, CloseChannel,
                               InjectDocument], Field(discriminator="kind")]
KINDS = ("tell", "news", "add_agent", "remove_agent", "pause_agent", "mute_agent", "resume_agent", "change_agent",
         "open_channel", "close_channel", "inject_document")


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Short


class Knows(_Question):
    """Who knows fact F: an interview of each agent's memory (a memory search with the fact).
    An agent knows it when a memory found holds every keyword (default: the fact's longest
    words) or, with `threshold`, when a memory found is at least that similar to the fact."""

    kind: Literal["knows"]
    fact: Text
    keywords: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]],
                        Field(max_length=10)] | None = None
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None


class StanceOn(_Question):
    """Each agent's stance on topic T: the one its persona holds (`stances`), and the one it
    expresses (the mean sentiment of its own messages that mention T)."""

    kind: Literal["stance"]
    topic: Short
    keywords: Annotated[list[Short], Field(max_length=10)] | None = None


class SentimentAbout(_Question):
    """The society's sentiment about topic T: the mean sentiment of the messages mentioning it."""

    kind: Literal["sentiment"]
    topic: Short
    keywords: Annotated[list[Short], Field(max_length=10)] | None = None


Question = Annotated[Union[Knows, StanceOn, SentimentAbout], Field(discriminator="kind")]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\- ]+$")]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""
    society: Short  # a bundled society (village, city) or a society file (relative to the scenario file)
    model: Short | None = None  # every agent's model route for this run (default: as the society file says)
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    sim_speed: Annotated[float, Field(gt=0, le=10_000)] = 1.0
    duration: Duration
    timeline: Annotated[list[Intervention], Field(max_length=1000)] = []
    questions: Annotated[list[Question], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.duration <= 0:
            raise ValueError("duration must be more than 0")
        names = [e.name for e in self.timeline if e.name]
        if len(names) != len(set(names)):
            raise ValueError("timeline entries' names must be unique")
        questions = [q.name for q in self.questions]
        if len(questions) != len(set(questions)):
            raise ValueError("questions' names must be unique")
        return self

    def late_entry(self) -> int | None:
        """The index of the first timeline entry that falls after the run's end (None: all fit)."""
        return next((i for i, e in enumerate(self.timeline) if e.real_offset(self.sim_speed) > self.real_duration), None)

    @property
    def real_duration(self) -> float:
        return self.duration / self.sim_speed

    def without(self, name: str) -> "Scenario":
        """The same scenario with the timeline entry `name` switched off (an A/B comparison's other arm)."""
        if name not in {e.name for e in self.timeline}:
            raise KeyError(name)
        return self.model_copy(update={"timeline": [e for e in self.timeline if e.name != name]})
