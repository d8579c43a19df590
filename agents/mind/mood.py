"""Mood: a bounded emotional state per agent that events move and time relaxes.

Three numbers: valence (-1 unhappy .. 1 happy), arousal (0 calm .. 1 excited) and energy
(0 exhausted .. 1 fresh). Each relaxes exponentially toward a baseline set by the persona's
traits (agreeable, stable people drift back to content; neurotic ones sit lower), so the state
can never run away. Mood changes how often an agent speaks (`talkativeness`) and the tone of
its prompt (`tone`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ..society.persona import Traits

# half-lives in simulated seconds: arousal settles fast, valence slowly
_HALF_LIFE = {"valence": 2 * 3600.0, "arousal": 30 * 60.0, "energy": 90 * 60.0}


MOOD_EMOJI = {"tired": "\N{SLEEPING FACE}", "excited": "\N{GRINNING FACE WITH STAR EYES}",
              "cheerful": "\N{SMILING FACE WITH SMILING EYES}", "irritated": "\N{ANGRY FACE}",
              "gloomy": "\N{PENSIVE FACE}", "restless": "\N{GRIMACING FACE}",
              "content": "\N{SLIGHTLY SMILING FACE}", "calm": "\N{RELIEVED FACE}"}


class Stimulus(StrEnum):
    MENTIONED = "mentioned"  # someone addressed me
    REPLIED = "replied"  # someone answered me
    REACTION = "reaction"  # someone reacted to my message
    SPOKE = "spoke"  # I posted (costs energy)
    MESSAGE = "message"  # I read a message in a channel I follow (its sentiment colours me a little)
    IGNORED = "ignored"  # nobody answered me for a long while


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


@dataclass
class Mood:
    valence: float = 0.1
    arousal: float = 0.35
    energy: float = 1.0

    @classmethod
    def baseline(cls, traits: Traits) -> Mood:
        return cls(
            valence=_clamp(0.15 + 0.4 * (traits.agreeableness - 0.5) - 0.5 * (traits.neuroticism - 0.5), -1, 1),
            arousal=_clamp(0.2 + 0.3 * traits.extraversion, 0, 1),
            energy=1.0,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, traits: Traits) -> Mood:
        base = cls.baseline(traits)
        if not data:
            return base
        return cls(
            valence=_clamp(float(data.get("valence", base.valence)), -1, 1),
            arousal=_clamp(float(data.get("arousal", base.arousal)), 0, 1),
            energy=_clamp(float(data.get("energy", base.energy)), 0, 1),
        )

    def to_json(self) -> dict[str, Any]:
        return {**{k: round(v, 4) for k, v in asdict(self).items()}, "label": self.label()}

    def relaxed(self, traits: Traits, sim_seconds: float) -> Mood:
        """The mood after `sim_seconds` without stimulus."""
        if sim_seconds <= 0:
            return Mood(self.valence, self.arousal, self.energy)
        base = Mood.baseline(traits)
        out = {}
        for key, half_life in _HALF_LIFE.items():
            keep = math.exp(-math.log(2) * sim_seconds / half_life)
            out[key] = getattr(base, key) + (getattr(self, key) - getattr(base, key)) * keep
        return Mood(**out)

    def felt(self, stimulus: Stimulus, traits: Traits, *, sentiment: float = 0.0, intensity: float = 1.0) -> Mood:
        """The mood after one stimulus; `sentiment` (-1..1) is the tone of the message involved.
        Neurotic agents feel negative tones more; extraverts are roused more by attention."""
        v, a, e = self.valence, self.arousal, self.energy
        social = 0.5 + traits.extraversion
        sensitivity = 0.6 + 0.8 * traits.neuroticism if sentiment < 0 else 0.8 + 0.4 * traits.agreeableness
        if stimulus in (Stimulus.MENTIONED, Stimulus.REPLIED):
            a += 0.12 * social * intensity
            v += (0.05 + 0.2 * sentiment * sensitivity) * intensity
        elif stimulus is Stimulus.REACTION:
            v += 0.05 * (1 + sentiment) * intensity
            a += 0.03 * social * intensity
        elif stimulus is Stimulus.SPOKE:
            e -= 0.04 + 0.04 * (1 - traits.extraversion)
            a += 0.02
        elif stimulus is Stimulus.MESSAGE:
            v += 0.04 * sentiment * sensitivity * intensity
            a += 0.01 * social * intensity
        elif stimulus is Stimulus.IGNORED:
            v -= 0.05 * (0.5 + traits.neuroticism) * intensity
            a -= 0.03
        return Mood(_clamp(v, -1, 1), _clamp(a, 0, 1), _clamp(e, 0, 1))

    def talkativeness(self, traits: Traits) -> float:
        """0..1: how much the mood adds to or takes from the urge to speak."""
        drive = 0.55 + 0.6 * self.arousal + 0.2 * self.valence
        return _clamp(drive * (0.25 + 0.75 * self.energy), 0.0, 1.0)

    def label(self) -> str:
        if self.energy < 0.25:
            return "tired"
        if self.valence >= 0.35:
            return "excited" if self.arousal >= 0.6 else "cheerful"
        if self.valence <= -0.3:
            return "irritated" if self.arousal >= 0.55 else "gloomy"
        if self.arousal >= 0.65:
            return "restless"
        return "content" if self.valence >= 0.05 else "calm"

    def emoji(self) -> str:
        """The label as one emoji (the agent's custom status in the member list)."""
        return MOOD_EMOJI[self.label()]

    def tone(self) -> str:
        """A few words for the prompt."""
        return {
            "tired": "You are a bit tired: keep it short.",
            "excited": "You are in high spirits and enthusiastic.",
            "cheerful": "You are in a good mood, warm and friendly.",
            "irritated": "You are irritated today and a little curt.",
            "gloomy": "You feel low and somewhat downbeat.",
            "restless": "You feel restless and eager to talk.",
            "content": "You feel relaxed and content.",
            "calm": "You feel calm and thoughtful.",
        }[self.label()]
