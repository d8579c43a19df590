"""A time window of a society: [since, until) as snowflake ids, and its time buckets.

Messages, LLM calls, turns and audit entries all have snowflake ids, whose top bits are the
creation time, so a window is an id range on primary keys and indexes, never a scan by date.
A bound is given as an ISO 8601 time with a time zone or as a snowflake (digits)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..core.errors import InvalidFormBody
from ..core.snowflake import EPOCH_MS, MAX_SNOWFLAKE

# bucket widths (seconds) a window is cut into: the smallest giving at most MAX_BUCKETS
BUCKET_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MAX_BUCKETS = 60


def id_at(seconds: float) -> int:
    """The smallest snowflake at a time (seconds since the Unix epoch)."""
    return max(0, int(seconds * 1000) - EPOCH_MS) << 22


def seconds_of(snowflake: int) -> float:
    return ((snowflake >> 22) + EPOCH_MS) / 1000


def parse_bound(value: str | None, field: str) -> int | None:
    """An ISO time (with a zone) or a snowflake, as a snowflake; a 400 for anything else."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        number = int(text)
        if number > MAX_SNOWFLAKE:
            raise InvalidFormBody.field(field, "NUMBER_TYPE_MAX", "A snowflake is at most 2^63 - 1.")
        return number
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFormBody.field(field, "DATE_TYPE_PARSE", "An ISO 8601 time (2026-01-01T10:00:00Z) or a snowflake.") from None
    if moment.tzinfo is None:
        raise InvalidFormBody.field(field, "DATE_TYPE_TIMEZONE", "Give a time zone (e.g. 2026-01-01T10:00:00Z).")
    if not EPOCH_MS / 1000 <= moment.timestamp() < 32_503_680_000:
        raise InvalidFormBody.field(field, "DATE_TYPE_PARSE", "Out of range.")
    return id_at(moment.timestamp())


@dataclass(frozen=True)
class Window:
    guild_id: int
    since_id: int  # inclusive
    until_id: int  # exclusive
    sim_speed: float = 1.0  # simulated seconds per real second (the society's clock)

    @classmethod
    def of(cls, guild_id: int, since: int | None, until: int | None, *, now: float, founded: float,
           sim_speed: float = 1.0) -> "Window":
        """Defaults: from the society's founding to now. since >= until is a 400."""
        since_id = since if since is not None else id_at(founded)
        until_id = until if until is not None else id_at(now) + (1 << 22)  # this millisecond included
        if since_id >= until_id:
            raise InvalidFormBody.field("since", "BASE_TYPE_BAD_RANGE", "`since` must come before `until`.")
        return cls(guild_id, since_id, until_id, sim_speed)

    @property
    def start(self) -> float:
        return seconds_of(self.since_id)

    @property
    def end(self) -> float:
        return seconds_of(self.until_id)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-3)

    @property
    def bucket_seconds(self) -> int:
        for step in BUCKET_STEPS:
            if int(self.seconds) / step <= MAX_BUCKETS:  # (whole seconds: `until` includes its millisecond)
                return step
        return -(-int(self.seconds) // MAX_BUCKETS)  # years: whatever width keeps MAX_BUCKETS

    @property
    def buckets(self) -> int:
        return max(1, -(-int(self.seconds) // self.bucket_seconds))

    def bucket_of(self, seconds: float) -> int:
        return min(self.buckets - 1, max(0, int((seconds - self.start) // self.bucket_seconds)))

    def bucket_start(self, index: int) -> float:
        return self.start + index * self.bucket_seconds

    def sim_seconds(self, seconds: float) -> float:
        """Simulated seconds since the window's start (real elapsed time times the clock's speed)."""
        return round((seconds - self.start) * self.sim_speed, 3)

    def axis(self) -> list[dict[str, object]]:
        """Each bucket's start, as an ISO time and in simulated seconds."""
        return [{"t": iso(self.bucket_start(i)), "sim_seconds": self.sim_seconds(self.bucket_start(i))} for i in range(self.buckets)]

    def describe(self) -> dict[str, object]:
        return {"guild_id": str(self.guild_id), "since": iso(self.start), "until": iso(self.end), "since_id": str(self.since_id),
                "until_id": str(self.until_id), "minutes": round(self.seconds / 60, 2), "bucket_seconds": self.bucket_seconds,
                "buckets": self.buckets, "sim_speed": self.sim_speed}


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")
