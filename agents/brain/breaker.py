"""A circuit breaker per backend: after `failure_threshold` consecutive failures the backend is
skipped for `recovery_seconds`, then one trial call (half-open) decides whether it is back."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..mind.clock import Clock


@dataclass
class CircuitBreaker:
    clock: Clock
    failure_threshold: int = 3
    recovery_seconds: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    _trial_in_flight: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock.now() - self.opened_at >= self.recovery_seconds else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True  # one trial at a time; the others keep falling back
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self._trial_in_flight = 0, None, False

    def failure(self) -> None:
        self._trial_in_flight = False
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self.clock.now()  # (re)open: a failed trial waits a full period again
