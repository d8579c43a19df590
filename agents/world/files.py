"""The world of a seeded society, read from the society file that seeded it.

A society row keeps the name it was seeded from (a bundled name such as `village`, or the YAML
file's path), so the world is read from that file (again when the file changes: an edited
calendar applies without seeding again). A file that is gone or no longer valid leaves the
society without a world, and says so once in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..society.persona import bundled_societies, load_society
from .model import World

log = logging.getLogger("townsquare.world")
_cache: dict[str, tuple[float, World | None]] = {}


def society_world(name: str) -> World | None:
    path = bundled_societies().get(name) or Path(name)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None  # seeded from a document, not a file (tests, the API): no world to read
    cached = _cache.get(name)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        world = load_society(path).world
    except Exception as exc:  # noqa: BLE001 - a broken file must not stop the society
        log.warning("the world of society %s could not be read from %s: %s", name, path, str(exc).splitlines()[0])
        world = None
    _cache[name] = (mtime, world)
    return world
