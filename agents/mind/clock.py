"""Time for the society: a real (or fake) clock, and the simulation clock that rhythms follow.

Everything that waits or measures time takes a `Clock`, so scheduler tests drive a `FakeClock`
through simulated hours in milliseconds instead of sleeping.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (real time, or a fake's)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


@dataclass
class FakeClock:
    t: float = 1_800_000_000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class SimClock:
    """Simulated time: starts at `start_hour` of day 0 when the society was founded (`epoch`,
    real seconds) and runs `speed` times faster than the clock. Pace (cooldowns, budgets) stays
    in real seconds because it protects real resources; rhythms (who is awake) follow sim time."""

    clock: Clock
    epoch: float
    speed: float = 1.0
    start_hour: float = 9.0

    def sim_seconds(self) -> float:
        return self.start_hour * 3600.0 + max(0.0, self.clock.now() - self.epoch) * self.speed

    def hour(self) -> float:
        return (self.sim_seconds() / 3600.0) % 24.0

    def day(self) -> int:
        return int(self.sim_seconds() // 86_400)

    def sim_elapsed(self, real_seconds: float) -> float:
        return real_seconds * self.speed
