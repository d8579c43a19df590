"""A society's member names for the quality gate, indexed by first name.

The gate asks of a candidate line whether it speaks as another member, names the agent itself
where a namesake exists, or claims ties with members (memory/guard.py). In a society of a
thousand members a scan of every name per candidate (and a regular expression compiled for
each) costs more than the model's words; a line can only name the members whose first name it
contains, so the gate looks those up here and runs its checks on them alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

MAX_NAME = 32  # a persona's name is at most this long (persona.Name), so is its first word


def first_name(name: str) -> str:
    return (name.split() or [""])[0]


class Roster(Sequence[str]):
    def __init__(self, names: Iterable[str]) -> None:
        self._names = [n for n in dict.fromkeys(names) if n and n.strip()]
        self._by_first: dict[str, list[str]] = {}
        self._full = {n.lower() for n in self._names}
        for name in self._names:
            self._by_first.setdefault(first_name(name).lower(), []).append(name)

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self._names[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def knows(self, word: str) -> bool:
        """Whether a member is called this (full or first name, any case)."""
        lowered = word.lower()
        return lowered in self._full or lowered in self._by_first

    def sharing_first(self, first: str) -> list[str]:
        return list(self._by_first.get(first.lower(), ()))

    def named_in(self, text: str) -> list[str]:
        """The members whose first name appears in the text as a word, or as the start of one
        ("Ana's", "Ana-Maria": a check's own word boundaries decide), sorted."""
        lowered, found = text.lower(), set()
        for i, ch in enumerate(lowered):
            if not (ch.isalnum() or ch == "_") or (i and (lowered[i - 1].isalnum() or lowered[i - 1] == "_")):
                continue  # not the start of a word
            end = i
            while end < len(lowered) and end - i < MAX_NAME and not lowered[end].isspace():
                end += 1
                names = self._by_first.get(lowered[i:end])
                if names:
                    found.update(names)
        return sorted(found)


def present_first(people: Sequence[str], roster: Roster | None, text: str) -> list[str]:
    """The names a check of `text` needs: the people present, then the members it names."""
    if roster is None:
        return list(people)
    return [*people, *(n for n in roster.named_in(text) if n not in people)]
