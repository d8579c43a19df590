"""One message as the consumers see it, and what every consumer offers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Msg:
    id: int
    at: float  # seconds since the Unix epoch (from the snowflake)
    bucket: int  # the window's time bucket
    channel_id: int
    author_id: int
    agent: bool  # written by an agent of the society
    content: str
    nonce: str | None = None
    ref: int | None = None  # the message it replies to (message_reference)
    mentions: Sequence[int] = ()
    counted: bool = True  # False: context only (a message before the window, seen for history)

    @property
    def answers(self) -> int | None:
        """The message the agent's turn answered: the worker's nonce `ev<id>` names it (a
        mention, a reply or a talkativeness roll); openers of quiet channels (`rv...`) answer none."""
        nonce = self.nonce or ""
        return int(nonce[2:]) if nonce.startswith("ev") and nonce[2:].isdigit() else None


class Consumer(Protocol):
    def feed(self, m: Msg) -> None: ...

    def result(self) -> dict[str, Any]: ...
