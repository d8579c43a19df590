"""How many threads llama.cpp may use for the next generation, chosen from what the rest of the
machine is doing.

llama.cpp's threads spin-wait on each other: with every core in use they are fastest, but when
another process holds one of the cores a two-thread generation stalls on the descheduled thread
and gets several times slower than one thread (docs/benchmarks.md, bench/model_threads.py). So
before each generation the chooser reads the CPU time the machine spent outside this process
since the last generation and gives llama.cpp one thread plus one per core that stayed free.
"""

from __future__ import annotations

import os
import time

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
FREE_CORE = 0.75  # a core counts as free when the others left at least this share of it idle


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (/proc/stat), None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK


class ThreadChooser:
    def __init__(self, most: int | None = None) -> None:
        self.most = max(1, most or os.cpu_count() or 1)
        self.cores = os.cpu_count() or 1
        self._last: tuple[float, float, float] | None = None  # (wall, machine busy, own cpu)
        self.current = 1

    def choose(self) -> int:
        """Threads for the next generation (1 .. `most`)."""
        busy = _busy_seconds()
        times = os.times()
        now, own = time.monotonic(), times.user + times.system
        if busy is None or self.most == 1:
            return 1
        last, self._last = self._last, (now, busy, own)
        if last is None or now - last[0] < 0.2:
            return self.current if last is not None else 1
        others = max(0.0, (busy - last[1]) - (own - last[2])) / (now - last[0])  # cores the rest of the machine used
        free = self.cores - 1 - others  # one core is the generation's own
        self.current = max(1, min(self.most, 1 + int(free / FREE_CORE)))
        return self.current
