"""The model is a shared, slow resource: turns take a place in front of it, by priority.

llama.cpp serves one generation at a time, and a busy CPU makes each one slower. Timing a turn
out throws its work away and the next turn queues behind the same slow model, so instead the
worker never offers the model more turns than it delivers: `slots` turns use it at once
(the bundled model: one), the others wait in priority order — a person's message to an agent
first — and a turn nobody asked for gives up after `max_wait` (the conversation has moved on)
rather than piling up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# priorities: lower goes first
HUMAN_DIRECT, AGENT_DIRECT, CONVERSATION, INITIATIVE, BACKGROUND = 0, 1, 2, 3, 4


def candidates_for(wanted: int, waiting: int, must_post: bool) -> int:
    """Lines to ask of the model for one turn: while other turns wait for it, one (two lines
    for every turn would halve how many turns the society gets; a rejected line still gets
    speak()'s two more tries), except for a person's direct question, which keeps the choice."""
    return wanted if must_post or waiting == 0 else min(wanted, 1)


class Deferred(Exception):
    """The turn waited its longest for the model and gave up (not a failure)."""


class ModelPace:
    def __init__(self, slots: int = 1) -> None:
        self.slots = max(1, slots)
        self.busy = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    def _release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # the place passes straight to the next in line
                return
        self.busy -= 1

    @asynccontextmanager
    async def turn(self, priority: int, max_wait: float | None = None) -> AsyncIterator[None]:
        """Holds one of the model's places for the block; raises `Deferred` when `max_wait`
        seconds pass first."""
        if self.busy < self.slots and not self.waiting:
            self.busy += 1
        else:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), fut))
            try:
                await asyncio.wait({fut}, timeout=max_wait)
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._release()  # handed over just as the turn was cancelled: pass it on
                else:
                    fut.cancel()
                raise
            if not fut.done():
                fut.cancel()
                raise Deferred(f"waited {max_wait:.0f} s for the model")
        try:
            yield
        finally:
            self._release()
