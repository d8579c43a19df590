"""Relationships: how each member gets on with each other one (directed, per pair).

- affinity -1..1: liking (warm replies, friendly reactions) or dislike (hostile replies, 👎).
- familiarity 0..1: how well they know each other; every exchange adds a little, less and less.
- trust 0..1 (0.5 = neutral): grows when an exchange is returned (reciprocity) in a friendly
  tone, drops with hostility.
- rating: the last explicit peer rating (1..5) the source gave the target.

Every worker rebuilds the same relationships from the same event stream (like moods); the tick
leader saves the changed pairs to PostgreSQL, and a starting worker loads them back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass

RECIPROCITY_WINDOW = 900.0  # seconds: an answer within this returns an exchange

_POSITIVE_EMOJI = set("👍❤️😂🎉😊🙏🔥👏😍🥰💯✨🙌😄😁🤗💪🌟⭐🍀🌻☀️🥳😆🤣💖💕👌")
_NEGATIVE_EMOJI = set("👎😡🤬💩🙄😒😠🤮😤")


_POSITIVE_EMOJI.discard("\ufe0f")  # the variation selector of "❤️" is no emotion
_NEGATIVE_EMOJI.discard("\ufe0f")


def emoji_tone(emoji: str) -> float:
    if any(ch in _NEGATIVE_EMOJI for ch in emoji):
        return -1.0
    if any(ch in _POSITIVE_EMOJI for ch in emoji):
        return 1.0
    return 0.3  # an unknown emoji still says "I noticed you"


@dataclass
class Bond:
    affinity: float = 0.0
    familiarity: float = 0.0
    trust: float = 0.5
    interactions: int = 0
    rating: float | None = None
    last_at: float = 0.0

    def to_json(self) -> dict[str, float | int | None]:
        return asdict(self)


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


def _toward(value: float, delta: float, lo: float = -1.0, hi: float = 1.0) -> float:
    """Adds `delta` with diminishing returns near the bounds (a close friend gains less from one
    more kind word than a stranger does)."""
    room = (hi - value) if delta > 0 else (value - lo)
    span = hi - lo
    return _clamp(value + delta * (room / span) * 2, lo, hi)


def describe(bond: Bond | None, name: str) -> str:
    """How the agent sees someone, in words for its prompt. Stated only from the numbers: an
    agent never claims a closer (or worse) tie than its record supports."""
    if bond is None or bond.familiarity < 0.08:
        return f"you hardly know {name}"
    if bond.affinity >= 0.45 and bond.familiarity >= 0.35:
        feeling = f"{name} is a good friend" + (" you trust" if bond.trust >= 0.6 else "")
    elif bond.affinity >= 0.15:
        feeling = f"you like {name}"
    elif bond.affinity <= -0.35:
        feeling = f"you find {name} difficult" + (" and do not trust them" if bond.trust < 0.4 else "")
    elif bond.affinity <= -0.1:
        feeling = f"you are a bit wary of {name}"
    else:
        feeling = f"you know {name}" if bond.familiarity >= 0.3 else f"you have talked with {name} a little"
    return feeling


class BondsOf(Mapping[int, "Bond | None"]):
    """How one member sees the others, as a read-only mapping (target -> bond, None for a
    stranger), without copying its ties: a turn's gate looks up the few members a line names."""

    def __init__(self, relations: Relations, source: int) -> None:
        self._relations, self._source = relations, source

    def __getitem__(self, target: int) -> Bond | None:
        return self._relations.get(self._source, target)

    def __iter__(self) -> Iterator[int]:
        return iter(self._relations.of(self._source))

    def __len__(self) -> int:
        return len(self._relations.of(self._source))


class Relations:
    def __init__(self) -> None:
        self.bonds: dict[tuple[int, int], Bond] = {}
        self._out: dict[int, dict[int, Bond]] = {}  # source -> target -> bond: one member's ties without a scan of all
        self.dirty: set[tuple[int, int]] = set()
        self.guilds: dict[tuple[int, int], int] = {}  # pair -> the society it was formed in
        self._addressed: dict[tuple[int, int], float] = {}  # (from, to) -> when `from` last addressed `to`

    def get(self, source: int, target: int) -> Bond | None:
        return self.bonds.get((source, target))

    def of(self, source: int) -> dict[int, Bond]:
        """How `source` sees each member it has a tie with (target -> bond), in the order the ties
        formed (read only)."""
        return self._out.get(source, {})

    def _put(self, source: int, target: int, bond: Bond) -> None:
        self.bonds[(source, target)] = bond
        self._out.setdefault(source, {})[target] = bond

    def bond(self, source: int, target: int) -> Bond:
        found = self.bonds.get((source, target))
        if found is None:
            found = Bond()
            self._put(source, target, found)
        self.dirty.add((source, target))
        return found

    def load(self, source: int, target: int, bond: Bond, guild_id: int) -> None:
        self._put(source, target, bond)
        self.guilds[(source, target)] = guild_id

    def affinity(self, source: int, target: int) -> float:
        found = self.bonds.get((source, target))
        return found.affinity if found else 0.0

    def familiarity(self, source: int, target: int) -> float:
        found = self.bonds.get((source, target))
        return found.familiarity if found else 0.0

    def _meet(self, a: int, b: int, at: float, weight: float, guild_id: int | None) -> tuple[Bond, Bond]:
        ab, ba = self.bond(a, b), self.bond(b, a)
        if guild_id:
            self.guilds[(a, b)] = self.guilds[(b, a)] = guild_id
        for bond in (ab, ba):
            bond.familiarity = _clamp(bond.familiarity + weight * (1.0 - bond.familiarity), 0.0, 1.0)
            bond.interactions += 1
            bond.last_at = max(bond.last_at, at)
        return ab, ba

    def addressed(self, source: int, target: int, tone: float, at: float, guild_id: int | None = None) -> None:
        """`source` replied to or mentioned `target`, in a tone -1..1."""
        if source == target:
            return
        ab, ba = self._meet(source, target, at, 0.06, guild_id)
        # being addressed is mildly flattering; the tone decides the rest
        ba.affinity = _toward(ba.affinity, 0.02 + 0.12 * tone)
        ab.affinity = _toward(ab.affinity, 0.02 + 0.04 * tone)
        back = self._addressed.get((target, source))
        if back is not None and at - back <= RECIPROCITY_WINDOW:
            change = 0.04 if tone >= 0 else -0.03
            ab.trust = _clamp(ab.trust + change * (1 - ab.trust if change > 0 else ab.trust), 0.0, 1.0)
            ba.trust = _clamp(ba.trust + change * (1 - ba.trust if change > 0 else ba.trust), 0.0, 1.0)
        if tone < -0.2:
            ba.trust = _clamp(ba.trust - 0.06 * -tone, 0.0, 1.0)
        self._addressed[(source, target)] = at

    def reacted(self, source: int, target: int, emoji: str, at: float, guild_id: int | None = None) -> None:
        """`source` reacted with `emoji` to a message by `target`."""
        if source == target:
            return
        tone = emoji_tone(emoji)
        ab, ba = self._meet(source, target, at, 0.02, guild_id)
        ba.affinity = _toward(ba.affinity, 0.05 * tone)
        ab.affinity = _toward(ab.affinity, 0.02 * tone)
        if tone < 0:
            ba.trust = _clamp(ba.trust - 0.03, 0.0, 1.0)

    def rated(self, source: int, target: int, rating: float, at: float) -> None:
        bond = self.bond(source, target)
        bond.rating = _clamp(rating, 1.0, 5.0)
        bond.last_at = max(bond.last_at, at)

    def take_dirty(self) -> list[tuple[int, int, int, Bond]]:
        """(guild, source, target, bond) changed since the last call (pairs formed in no society, such
        as a DM between strangers to every society, are not saved)."""
        dirty, self.dirty = self.dirty, set()
        return [(self.guilds[p], p[0], p[1], self.bonds[p]) for p in dirty if p in self.bonds and p in self.guilds]

    def mark_dirty(self, pairs: list[tuple[int, int, int, Bond]]) -> None:
        """A failed save: try these again next time."""
        self.dirty |= {(s, t) for _, s, t, _ in pairs}
