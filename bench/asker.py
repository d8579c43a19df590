"""A person in a benchmarked society, and a CPU-bound neighbour (used by bench/society.py).

`Asker`: every `every` seconds a human member @mentions an awake agent, in one of its home
channels, with a question a newcomer would ask there (bench/quality.py's list), and measures how
long that agent takes to answer it (a Discord reply to the question, by that agent). What it
asked and got is kept for reading.

`Neighbour`: a process that keeps one core busy (a plain Python loop), as a user's browser or a
shared machine does.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import QUESTIONS  # noqa: E402


class Neighbour:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


class Asker:
    def __init__(self, url: str, token: str, pg: Any, guild_id: int, every: float, seed: int = 1) -> None:
        self.url, self.pg, self.guild_id, self.every = url, pg, guild_id, every
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rng = random.Random(seed)
        self.asked: list[dict[str, Any]] = []

    async def run(self, stop: asyncio.Event, until: float) -> None:
        agents = await self.pg.fetch("SELECT a.id, a.persona->>'name' AS name, a.persona->'home_channels' AS homes "
                                     "FROM agents a WHERE a.guild_id = $1 ORDER BY a.id", self.guild_id)
        channels = {r["name"]: r["id"] for r in await self.pg.fetch(
            "SELECT id, name FROM channels WHERE guild_id = $1 AND type = 0", self.guild_id)}
        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=30) as http:
            next_ask = time.time() + min(30.0, self.every)
            while time.time() < until and not stop.is_set():
                if time.time() >= next_ask:
                    await self._ask(http, agents, channels)
                    next_ask += self.every
                await self._collect(http)
                await asyncio.sleep(1.0)
            for _ in range(60):  # answers still coming after the window: a short grace
                if all(a.get("answer") is not None for a in self.asked):
                    break
                await self._collect(http)
                await asyncio.sleep(1.0)

    async def _ask(self, http: httpx.AsyncClient, agents: list[Any], channels: dict[str, int]) -> None:
        agent = self.rng.choice(agents)
        import json

        homes = [h for h in (json.loads(agent["homes"]) if isinstance(agent["homes"], str) else agent["homes"] or []) if h in channels]
        channel = self.rng.choice(homes or list(channels))
        question = self.rng.choice(QUESTIONS.get(channel, QUESTIONS["general"]))
        r = await http.post(f"/api/v10/channels/{channels[channel]}/messages", json={"content": f"<@{agent['id']}> {question}"})
        if r.status_code == 200:
            self.asked.append({"id": r.json()["id"], "channel_id": channels[channel], "channel": channel, "agent_id": str(agent["id"]),
                               "agent": agent["name"], "question": question, "at": time.time(), "answer": None, "seconds": None})

    async def _collect(self, http: httpx.AsyncClient) -> None:
        for ask in self.asked:
            if ask["answer"] is not None:
                continue
            r = await http.get(f"/api/v10/channels/{ask['channel_id']}/messages", params={"after": ask["id"], "limit": 50})
            if r.status_code != 200:
                continue
            for m in r.json():
                ref = (m.get("message_reference") or {}).get("message_id")
                if m["author"]["id"] == ask["agent_id"] and ref == ask["id"]:
                    ask["answer"], ask["seconds"] = m["content"], round(time.time() - ask["at"], 1)
                    break

    def report(self) -> dict[str, Any]:
        seconds = [a["seconds"] for a in self.asked if a["seconds"] is not None]
        return {"asked": len(self.asked), "answered": len(seconds), "answer_p50_s": _pct(seconds, 0.5),
                "answer_p90_s": _pct(seconds, 0.9), "answer_max_s": max(seconds) if seconds else None,
                "exchanges": [{k: a[k] for k in ("channel", "agent", "question", "answer", "seconds")} for a in self.asked]}
