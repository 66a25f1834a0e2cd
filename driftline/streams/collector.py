"""Python's garbage collector set for stream processing, for the duration of a run.

The cyclic collector runs by allocation counts: a young collection every 700 allocations (net of
frees), a middle one every 10 young ones, a full one every 10 middle ones (Python's defaults).
A stream processor allocates a few dozen objects per event and holds many of them for a while
(a batch until the monitors have seen it, the join's pending events, the monitors' windows): with
the defaults they outlive young collections, get promoted, and set off full collections, each of
which walks everything the process holds. The more state a worker keeps, the more each costs.
Nearly all of this memory is freed by reference count (events, batches and buffers hold no
cycles), so collecting less often costs little memory.

Measured (``bench.kafka``'s worker over 100k events, 4 partitions, CPU of the processing
thread): 18.4 s with the defaults, 8.2 s at (10 000, 10, 10), 6.2 s at :data:`WORKER`. The file
replay, whose state is small, gains from the young threshold alone (:data:`REPLAY`): on
``bench/detection``'s throughput stream, collection took ~6% of its instructions at 700 and ~0.5%
at 10 000.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["REPLAY", "WORKER", "collections_every"]

Thresholds = tuple[int, int, int]

#: ``driftline run`` and ``driftline faust``: young, middle and full collections made rarer.
WORKER: Thresholds = (50_000, 20, 100)
#: ``driftline replay``: young collections made rarer.
REPLAY: Thresholds = (10_000, 10, 10)


@contextmanager
def collections_every(thresholds: Thresholds) -> Iterator[None]:
    """Raise each of the collector's thresholds to at least ``thresholds`` for the duration
    (nothing if collection is off); restored afterwards, unless changed meanwhile."""
    before = gc.get_threshold()
    raised = tuple(max(now, wanted) for now, wanted in zip(before, thresholds, strict=True))
    if before[0] == 0 or raised == before:
        yield
        return
    gc.set_threshold(*raised)
    try:
        yield
    finally:
        if gc.get_threshold() == raised:
            gc.set_threshold(*before)
