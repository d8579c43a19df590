"""The garbage collector and a long-running server.

A server process imports a large, permanent heap (FastAPI, SQLAlchemy, Chroma's client,
networkx, numpy, the web UI's templates: about 325,000 tracked objects). Every full collection
walks all of it: about 0.4 s on the 2-core machine of docs/benchmarks.md, paid by whichever
request happened to trigger it. Freezing the heap once start-up is over moves those objects to
the permanent generation; a full collection then walks only what requests allocated since.
"""

from __future__ import annotations

import gc


# The youngest generation is collected every YOUNG_THRESHOLD container allocations instead of
# CPython's 700. A server allocates short-lived containers per request and per gateway frame, most
# freed by reference counting anyway; at 700 the young collections (and every tenth, of the middle
# generation: 2-12 ms with 1,000 gateway sessions) ran several times a second, inside requests.
# bench/gateway.py: POST p99 9-12 ms instead of 14-22 and delivery p99 47 ms instead of 53-76.
YOUNG_THRESHOLD = 20_000

_default_thresholds: tuple[int, int, int] | None = None


def freeze_startup_heap() -> None:
    """Call once a process has finished starting (after its imports and set-up)."""
    global _default_thresholds
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    if _default_thresholds is None:
        _default_thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_THRESHOLD, *_default_thresholds[1:])


def thaw_heap() -> None:
    """At shutdown: frozen objects become collectable again and the thresholds are CPython's
    (a test process starts many apps)."""
    global _default_thresholds
    gc.unfreeze()
    if _default_thresholds is not None:
        gc.set_threshold(*_default_thresholds)
        _default_thresholds = None
