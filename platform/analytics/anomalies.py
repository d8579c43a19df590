"""Alerts: an agent looping, silent, hostile or spamming over the window, each with the
messages that show it.

- looping: at least 3 of its lines are near-duplicates of recent lines of their channel and
  they are at least 30% of what it said (the gate's `loop` / `parrot` refusals are reported
  beside: the ones it caught);
- silent: an active agent said nothing while the society said at least 20 messages;
- hostile: the mean sentiment of its lines is at most -0.3 over at least 3 lines with sentiment,
  3 of them negative;
- spamming: at least 10 messages and at least 3 times (plus one) the median of the society's agents.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from typing import Any

from .activity import Activity
from .message import Msg
from .mood import Sentiment
from .textstats import TextQuality

LOOP_MIN, LOOP_SHARE = 3, 0.3
SILENT_SOCIETY_MIN = 20
HOSTILE_MEAN, HOSTILE_MIN = -0.3, 3
SPAM_MIN, SPAM_FACTOR = 10, 3.0
LINKED = 10


class Anomalies:
    def __init__(self, agents: dict[int, str], states: dict[int, str]) -> None:
        self.agents, self.states = agents, states
        self.recent: dict[int, deque[int]] = {}

    def feed(self, m: Msg) -> None:
        if m.counted and m.agent:
            self.recent.setdefault(m.author_id, deque(maxlen=LINKED)).append(m.id)

    def result(self, activity: Activity, quality: TextQuality, mood: Sentiment, gate_by_agent: dict[int, Counter[str]]) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = []
        counts = {a: activity.by_author.get(a, 0) for a in self.agents}
        median = statistics.median(counts.values()) if counts else 0

        def alert(kind: str, agent: int, severity: str, detail: dict[str, Any], ids: list[int]) -> None:
            alerts.append({"kind": kind, "severity": severity, "agent": {"id": str(agent), "name": self.agents[agent]},
                           "detail": detail, "message_ids": [str(i) for i in ids[:LINKED]]})

        for agent in sorted(self.agents, key=lambda a: self.agents[a]):
            said = counts[agent]
            near = quality.by_author.get(agent, 0)
            caught = gate_by_agent.get(agent, Counter())
            if near >= LOOP_MIN and said and near / said >= LOOP_SHARE:
                alert("looping", agent, "warning", {"near_duplicates": near, "messages": said, "share": round(near / said, 3),
                                                    "gate_loop": caught.get("loop", 0), "gate_parrot": caught.get("parrot", 0)},
                      quality.near_ids.get(agent, []))
            if said == 0 and activity.total >= SILENT_SOCIETY_MIN and self.states.get(agent, "active") == "active":
                alert("silent", agent, "info", {"messages": 0, "society_messages": activity.total}, [])
            mean, scored, negative, _ = mood.author_mean(agent)
            if mean is not None and scored >= HOSTILE_MIN and negative >= HOSTILE_MIN and mean <= HOSTILE_MEAN:
                alert("hostile", agent, "warning", {"mean_sentiment": round(mean, 3), "negative": negative, "scored": scored},
                      mood.worst_ids(agent))
            if said >= SPAM_MIN and said >= SPAM_FACTOR * median + 1:
                alert("spamming", agent, "warning", {"messages": said, "society_median": median,
                                                     "share": round(said / max(1, activity.agent_total), 3)},
                      list(self.recent.get(agent, [])))
        order = {"warning": 0, "info": 1}
        alerts.sort(key=lambda a: (order[a["severity"]], a["kind"], a["agent"]["name"]))
        return alerts
