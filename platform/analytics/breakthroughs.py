"""Breakthroughs: an idea first said by one agent and then taken up by others across communities.

An idea is a pair of content words said together (two consecutive words once stop words are
left out: "solar roof", "night market"), the closest cheap stand-in for a new notion. Its
origin is the first agent to say it in the window (an idea a person said first is theirs, not
an agent's breakthrough); its adopters are the other agents who said it after, each with their
first message. A breakthrough has at least `MIN_ADOPTERS` adopters, at least one of them in
another community than the origin's (communities of the social graph, see social.py), and was
not already everyone's vocabulary (fewer than half the agents said it in the window's first
tenth). Ideas nobody took up within `HORIZON` agent messages are forgotten, so memory stays
bounded on long windows.
"""

from __future__ import annotations

from typing import Any

from .message import Msg
from .topics import terms
from .window import Window

MIN_ADOPTERS = 2
HORIZON = 20_000
PRUNE_EVERY = 5_000
ADOPTERS_KEPT = 12
REPORTED = 10


class _Idea:
    __slots__ = ("origin", "origin_msg", "at", "agent_origin", "adopters", "index", "early")

    def __init__(self, origin: int, message_id: int, at: float, agent_origin: bool, index: int) -> None:
        self.origin, self.origin_msg, self.at, self.agent_origin, self.index = origin, message_id, at, agent_origin, index
        self.adopters: dict[int, tuple[int, float]] = {}
        self.early = 0  # speakers in the window's first tenth


class Breakthroughs:
    def __init__(self, window: Window, agents: dict[int, str]) -> None:
        self.window, self.agents = window, agents
        self.ideas: dict[str, _Idea] = {}
        self.seen = 0
        self.early_until = window.start + window.seconds / 10

    def feed(self, m: Msg) -> None:
        if not m.counted or not m.content:
            return
        words = terms(m.content)
        if len(words) < 2:
            return
        self.seen += 1
        agent = m.author_id in self.agents
        for key in {f"{a} {b}" for a, b in zip(words, words[1:]) if a != b}:
            idea = self.ideas.get(key)
            if idea is None:
                idea = self.ideas[key] = _Idea(m.author_id, m.id, m.at, agent, self.seen)
                idea.early = int(m.at < self.early_until)
            elif m.author_id != idea.origin and m.author_id not in idea.adopters:
                if agent and len(idea.adopters) < ADOPTERS_KEPT:
                    idea.adopters[m.author_id] = (m.id, m.at)
                if m.at < self.early_until:
                    idea.early += 1
        if self.seen % PRUNE_EVERY == 0:
            old = self.seen - HORIZON
            self.ideas = {k: v for k, v in self.ideas.items() if v.adopters or v.index > old}

    def result(self, communities: dict[int, int], messages: dict[int, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        found = []
        everyone = max(1, len(self.agents))
        for key, idea in self.ideas.items():
            if not idea.agent_origin or len(idea.adopters) < MIN_ADOPTERS or idea.early * 2 >= everyone:
                continue
            home = communities.get(idea.origin)
            reached = {communities.get(a) for a in idea.adopters} - {None}
            if home is None or not (reached - {home}):
                continue
            found.append((len(reached | {home}), len(idea.adopters), -idea.at, key, idea))
        found.sort(key=lambda f: (-f[0], -f[1], -f[2], f[3]))
        out = []
        for n_comm, n_adopt, _, key, idea in found[:REPORTED]:
            out.append({
                "idea": key, "origin": {"id": str(idea.origin), "name": self.agents.get(idea.origin, str(idea.origin)),
                                        "community": communities.get(idea.origin), "message_id": str(idea.origin_msg),
                                        "sim_seconds": self.window.sim_seconds(idea.at)},
                "adopters": [{"id": str(a), "name": self.agents.get(a, str(a)), "community": communities.get(a), "message_id": str(mid),
                              "sim_seconds": self.window.sim_seconds(at)} for a, (mid, at) in sorted(idea.adopters.items(), key=lambda kv: kv[1])],
                "communities": n_comm, "message_ids": [str(idea.origin_msg)] + [str(mid) for mid, _ in sorted(idea.adopters.values())],
            })
        return out

    def candidates(self) -> int:
        return sum(1 for i in self.ideas.values() if i.agent_origin and len(i.adopters) >= MIN_ADOPTERS)
