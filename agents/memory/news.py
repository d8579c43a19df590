"""What is on an agent's mind: the news it would bring up when it opens a conversation.

Generative Agents' party spread because the host kept bringing up its plan and everyone who
heard of it might pass it on. Here an agent that opens a conversation sometimes does so with its
most notable memory of the last simulated day (its own plan, news it heard, a reflection), so
information travels from one conversation to the next. Notability fades by one importance point
per simulated day, so a fresh 7 beats a day-old 7 and a plan of importance 9 stays on the mind
for a while without blocking everything else forever.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import Kind, Memory

NOTABLE = 6.0  # importance from which a memory is worth bringing up
SIM_DAY = 86_400.0


def on_mind_window(sim_speed: float) -> float:
    """Real seconds that make one simulated day (how far back news is still news)."""
    return SIM_DAY / max(sim_speed, 1e-6)


def on_mind(memories: Iterable[Memory], *, now: float, sim_speed: float) -> Memory | None:
    """The memory an agent would open with, or None when nothing notable happened lately."""
    window = on_mind_window(sim_speed)
    notable = [m for m in memories if m.importance >= NOTABLE and m.kind in (Kind.OBSERVATION, Kind.REFLECTION)
               and now - m.created_at <= window]
    if not notable:
        return None
    return max(notable, key=lambda m: (m.importance - (now - m.created_at) / window, m.created_at, m.id))
