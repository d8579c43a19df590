"""Reflections and consolidation: the slow side of memory (run as rq jobs).

Reflection (Generative Agents): when the importance of what an agent took in since its last
reflection passes a threshold, it looks at its recent memories and writes a higher-level one.
The local model is asked for one insight; whatever it says must pass the same cleaning and the
invented-tie guard as a chat message. Without a usable answer, the agent still reflects from
the record: who it has been dealing with and about what, which needs no model at all.

Consolidation keeps memory bounded: past `max_per_agent` memories, the oldest observations are
condensed into one conversation summary per channel and hour, then, if that is not enough, the
least worth keeping (importance x recency) are forgotten. Facts and reflections go last.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

from .model import Kind, Memory, clamp_importance, memory_id
from .scoring import recency
from .store import MemoryStore

_STOP = set("""the a an and or but if then so to of in on at for with from by about as is are was were be been being it its
this that these those i me my we our you your he she they them his her their there here what which who whom when where why
how not no yes just really very too also can could would should will shall may might must do does did have has had said
says say spoke wrote replied privately channel something anything everyone someone today tonight like get got going know
think want well good great yeah okay oh hey hi hello""".split())
_WORD = re.compile(r"[a-zA-Z][a-zA-Z'\-]{3,}")


def keywords(texts: Sequence[str], n: int = 3) -> list[str]:
    counts: Counter[str] = Counter()
    for text in texts:
        body = text.split(":", 1)[1] if ":" in text[:60] else text  # past the "Ana said in #x:" frame
        counts.update(w.lower() for w in _WORD.findall(body) if w.lower() not in _STOP)
    return [w for w, _ in counts.most_common(n)]


def record_reflection(agent_id: int, recent: Sequence[Memory], names: Mapping[int, str], now: float) -> Memory | None:
    """A reflection drawn from the record alone: the people most present and the subjects."""
    if not recent:
        return None
    people = Counter(u for m in recent for u in m.about if u in names)
    topics = keywords([m.text for m in recent])
    who = [names[u] for u, _ in people.most_common(2)]
    if not who and not topics:
        return None
    text = "Lately I have been " + (f"talking most with {' and '.join(who)}" if who else "following the conversations")
    text += f", mostly about {', '.join(topics)}." if topics else "."
    return reflection(agent_id, text, recent, tuple(u for u, _ in people.most_common(2)), now)


def reflection(agent_id: int, text: str, evidence: Sequence[Memory], about: tuple[int, ...], now: float) -> Memory:
    importance = clamp_importance(sum(sorted((m.importance for m in evidence), reverse=True)[:5]) / max(1, min(5, len(evidence))) + 1)
    return Memory(id=memory_id(agent_id, "reflection", text), agent_id=agent_id, kind=Kind.REFLECTION, text=text,
                  importance=importance, created_at=now, last_access=now, about=about, source="reflection")


def reflection_messages(agent_name: str, recent: Sequence[Memory]) -> list[dict[str, str]]:
    lines = "\n".join(f"- {' '.join(m.text.split())[:100]}" for m in recent[:8])  # a short prompt: the model is shared
    return [{"role": "system", "content": f"You are {agent_name}, thinking quietly about your recent days."},
            {"role": "user", "content": f"What you remember:\n{lines}\n\nWhat is one thing you have learned about the people "
                                        "around you or about yourself? Answer with one sentence starting with \"I\"."}]


def clean_insight(text: str | None) -> str | None:
    if not text:
        return None
    first = re.split(r"(?<=[.!?])\s", " ".join(text.split()))[0].strip(" \"'")
    if not (15 <= len(first) <= 240) or not first.startswith("I") or "remember" in first.lower()[:20]:
        return None
    return first if first.endswith((".", "!", "?")) else first + "."


def summarise(agent_id: int, group: Sequence[Memory], channel_name: str | None, names: Mapping[int, str]) -> Memory:
    """One conversation summary for a group of observations (same channel, same hour)."""
    start = min(m.created_at for m in group)
    when = datetime.fromtimestamp(start, timezone.utc).strftime("%b %d around %H:00")
    people = Counter(u for m in group for u in m.about)
    who = [names.get(u, "someone") for u, _ in people.most_common(4)]
    topics = keywords([m.text for m in group], 4)
    where = f"#{channel_name}" if channel_name else "private messages"
    text = f"In {where} on {when}, " + (f"{', '.join(who)} and I" if who else "I") + f" exchanged {len(group)} messages"
    text += f" about {', '.join(topics)}." if topics else "."
    about = tuple(sorted(people))
    return Memory(id=memory_id(agent_id, "summary", *sorted(m.id for m in group)), agent_id=agent_id, kind=Kind.SUMMARY, text=text,
                  importance=clamp_importance(max(m.importance for m in group)), created_at=start,
                  last_access=max(m.last_access for m in group), about=about, channel_id=group[0].channel_id, source="consolidation")


def consolidate(store: MemoryStore, agent_id: int, max_per_agent: int, *, names: Mapping[int, str] | None = None,
                channel_names: Mapping[int, str] | None = None, now: float | None = None) -> dict[str, int]:
    """Brings one agent's memory under `max_per_agent`; returns what it did."""
    now = now or time.time()
    names, channel_names = names or {}, channel_names or {}
    total = store.count(agent_id)
    done = {"before": total, "summarised": 0, "summaries": 0, "forgotten": 0}
    if total <= max_per_agent:
        done["after"] = total
        return done
    target = int(max_per_agent * 0.8)  # leave room, so this does not run again on every new memory
    observations = sorted(store.find(agent_id, {"kind": Kind.OBSERVATION.value}), key=lambda m: m.created_at)
    excess = total - target
    oldest = observations[:excess + excess // 4]
    groups: dict[tuple[int | None, int], list[Memory]] = defaultdict(list)
    for m in oldest:
        groups[(m.channel_id, int(m.created_at // 3600))].append(m)
    summaries = [summarise(agent_id, g, channel_names.get(g[0].channel_id or 0), names) for g in groups.values() if len(g) >= 2]
    if summaries:
        store.add(summaries)
    folded = [m.id for g in groups.values() if len(g) >= 2 for m in g]
    if folded:
        store.forget(agent_id, folded)
    done["summarised"], done["summaries"] = len(folded), len(summaries)
    left = store.count(agent_id)
    if left > target:  # still too many: forget the least worth keeping, facts and reflections last
        everything = store.find(agent_id)
        rank = {Kind.OBSERVATION: 0, Kind.SUMMARY: 1, Kind.FACT: 2, Kind.REFLECTION: 3}
        worth = sorted(everything, key=lambda m: (rank[m.kind], m.importance * recency(m.last_access, now, store.decay_per_hour)))
        gone = [m.id for m in worth[:left - target]]
        store.forget(agent_id, gone)
        done["forgotten"] = len(gone)
    done["after"] = store.count(agent_id)
    return done
