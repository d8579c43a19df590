"""The garbage collector and a long-running server.

A server process imports a large, permanent heap (FastAPI, SQLAlchemy, Chroma's client,
networkx, numpy, the web UI's templates: about 325,000 tracked objects). Every full collection
walks all of it: about 0.4 s on the 2-core machine of docs/benchmarks.md, paid by whichever
request happened to trigger it. Freezing the heap once start-up is over moves those objects to
the permanent generation; a full collection then walks only what requests allocated since.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Call once a process has finished starting (after its imports and set-up)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()


def thaw_heap() -> None:
    """At shutdown: frozen objects become collectable again (a test process starts many apps)."""
    gc.unfreeze()
