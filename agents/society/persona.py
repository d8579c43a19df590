"""Who an agent is: the persona schema shared by society files, the agent registry and the runtime.

A society file (YAML) names a guild, its channels and its cast. The same `Persona` model
validates an agent created or changed at run time through the API, so there is one definition
of what an agent may be.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from ..world.model import World, check_world

MAX_SOCIETY_AGENTS = 20_000  # a society file's cast; 10,000 agents seed in one to two minutes (docs/benchmarks.md)

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=32, pattern=r"^[A-Za-z0-9_.\- ]+$")]
ChannelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[a-z0-9_\-]+$")]


class Traits(BaseModel):
    """Big Five, each in [0, 1]."""

    model_config = ConfigDict(extra="forbid")
    openness: Unit = 0.5
    conscientiousness: Unit = 0.5
    extraversion: Unit = 0.5
    agreeableness: Unit = 0.5
    neuroticism: Unit = 0.5


class Rhythm(BaseModel):
    """When the agent is about, in simulated local hours: awake from `wake` to `sleep` (which may
    wrap past midnight), most active around `peak`."""

    model_config = ConfigDict(extra="forbid")
    wake: Annotated[int, Field(ge=0, le=23)] = 7
    sleep: Annotated[int, Field(ge=0, le=23)] = 23
    peak: Annotated[int, Field(ge=0, le=23)] = 18

    def awake(self, hour: float) -> bool:
        if self.wake == self.sleep:
            return True
        if self.wake < self.sleep:
            return self.wake <= hour < self.sleep
        return hour >= self.wake or hour < self.sleep

    def activity(self, hour: float) -> float:
        """0 asleep; otherwise 0.5..1.0, highest at `peak` (circular distance in hours)."""
        if not self.awake(hour):
            return 0.0
        distance = min(abs(hour - self.peak), 24 - abs(hour - self.peak))
        return 1.0 - 0.5 * min(distance, 12.0) / 12.0


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    bio: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=600)]
    traits: Traits = Traits()
    interests: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]],
                         Field(max_length=12)] = []
    style: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = "default"
    rhythm: Rhythm = Rhythm()
    home_channels: Annotated[list[ChannelName], Field(max_length=20)] = []  # where it mostly hangs out; empty: all
    # What this person knows from life and work, one plain statement each ("Beer traps keep slugs off
    # lettuces."): the planner answers questions from it instead of letting a small model invent.
    knows: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=240)]],
                     Field(max_length=60)] = []
    # What this person thinks, one first-person opinion each ("The old mill should be a museum; the
    # village keeps its history in shoeboxes."): the planner answers a question of opinion from it,
    # as it answers a question of fact from `knows` (a small model's own opinions were made up)
    views: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=240)]],
                     Field(max_length=60)] = []
    # where it stands on topics: -1 (against) .. 1 (for); set by society files and scenario interventions
    stances: Annotated[dict[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)],
                            Annotated[float, Field(ge=-1.0, le=1.0)]], Field(max_length=20)] = {}

    @property
    def username(self) -> str:
        """The bot user's name: lowercase, spaces to underscores."""
        return re.sub(r"\s+", "_", self.name.strip().lower())[:32]


class ChannelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ChannelName
    topic: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1024)] = ""


class Society(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guild: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""
    channels: Annotated[list[ChannelSpec], Field(min_length=1, max_length=50)]
    agents: Annotated[list[Persona], Field(min_length=1)]  # at most MAX_SOCIETY_AGENTS (checked first, with a clear message)
    revival_topics: Annotated[list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)]],
                              Field(max_length=200)] = []  # seeds for idle channels, beside the LLM's own
    world: Annotated[World | None, AfterValidator(check_world)] = None  # places, calendar, news, routines (agents/world)

    @field_validator("agents", mode="before")
    @classmethod
    def _cast_size(cls, agents: object) -> object:
        if isinstance(agents, list) and len(agents) > MAX_SOCIETY_AGENTS:
            raise ValueError(f"a society file holds at most {MAX_SOCIETY_AGENTS:,} agents and this one has {len(agents):,}: "
                             "split the cast into several societies")
        return agents

    @field_validator("channels")
    @classmethod
    def _unique_channels(cls, channels: list[ChannelSpec]) -> list[ChannelSpec]:
        names = [c.name for c in channels]
        if len(names) != len(set(names)):
            raise ValueError("channel names must be unique")
        return channels

    @model_validator(mode="after")
    def _consistent(self) -> Society:
        usernames = [a.username for a in self.agents]
        if len(usernames) != len(set(usernames)):
            raise ValueError("agent names must be unique")
        known = {c.name for c in self.channels}
        for agent in self.agents:
            unknown = set(agent.home_channels) - known
            if unknown:
                raise ValueError(f"{agent.name}: unknown home channels {sorted(unknown)}")
        return self


def bundled_societies() -> dict[str, Path]:
    """The society files that ship with Townsquare, by name (file stem)."""
    folder = resources.files("townsquare.agents.society") / "societies"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def load_society(name_or_path: str | Path) -> Society:
    """A bundled society by name (`village`, `city`) or any YAML file by path."""
    bundled = bundled_societies()
    path = bundled.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no society {name_or_path!r}; bundled: {', '.join(sorted(bundled))}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: a 10,000-agent file parses in seconds, not a minute
    return Society.model_validate(yaml.load(path.read_text(encoding="utf-8"), Loader=loader))  # noqa: S506 - a safe loader
