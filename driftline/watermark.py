"""Event-time order across join partitions: merge several sorted streams by their watermarks.

In the Kafka runtime every input partition has its own join stage, and each releases its items in
event-time order; a model's items then reach one monitor partition from many join partitions, in
whatever interleaving Kafka gives. A single reorder buffer with a fixed lateness would put them
back in order only if no join partition ran more than that lateness ahead of another, which a
backlog or a restart breaks easily. So each join partition also reports its progress, a
:class:`Progress` marker meaning "every item up to ``watermark`` has been sent", and the
:class:`MergeBuffer` releases an item only once *every* source has passed its time: the monitors
see the same sequence as with one join stage over all the events, whatever the interleaving.

A source that has gone quiet releases everything it holds and reports itself ``drained``: it no
longer holds the others back until it reports a watermark again. When every source is drained,
everything held is released.

>>> merge = MergeBuffer(sources=2)
>>> merge.push(5, "b", "x5@0")
>>> merge.push(3, "a", "x3@1")
>>> merge.progress(Progress(source=0, watermark=6))
>>> merge.pop_ready()  # source 1 has not reported yet
[]
>>> merge.progress(Progress(source=1, watermark=4))
>>> merge.pop_ready()
['x3@1']
>>> merge.progress(Progress(source=1, watermark=4, drained=True))
>>> merge.pop_ready()
['x5@0']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from driftline.ordering import RunQueue

__all__ = ["MergeBuffer", "Progress"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Progress:
    """A join partition's (``source``) progress: items up to ``watermark`` (ms) have been sent.

    ``drained``: the source released everything it held (it went quiet, or the run is ending),
    so it does not hold the other sources back until its next report.
    """

    source: int
    watermark: int | None
    drained: bool = False


class MergeBuffer(Generic[T]):
    """Holds items from ``sources`` join partitions until every source's watermark passes them.

    Items come out sorted by ``(ts, key)`` (then arrival order), as from one
    :class:`~driftline.ordering.EventTimeBuffer`. An item older than what was already released
    (a late event) comes out with the next release, and is counted as ``late``.
    """

    def __init__(self, sources: int) -> None:
        if sources < 1:
            raise ValueError(f"sources must be >= 1, got {sources}")
        self.sources = sources
        self._reset()

    def _reset(self) -> None:
        self._queue: RunQueue[T] = RunQueue()  # as in EventTimeBuffer: sorted runs and a heap
        self._marks: dict[int, Progress] = {}
        self._released: int | None = None
        self.counts: Counter[str] = Counter()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(RunQueue.upgrade(state))

    def resize(self, sources: int) -> None:
        """The number of join partitions changed (partitions were added to the input topics)."""
        self.sources = sources
        self._marks = {s: m for s, m in self._marks.items() if s < sources}

    def push(self, ts: int, key: str, item: T) -> None:
        if self._released is not None and ts < self._released:
            self.counts["late"] += 1
        self._queue.add(ts, key, item)

    def progress(self, mark: Progress) -> None:
        """Record a source's latest progress (the latest report wins, even if it is lower)."""
        if 0 <= mark.source < self.sources:
            self._marks[mark.source] = mark

    @property
    def limit(self) -> int | None:
        """Items at or before this event time may be released; None: wait (a source is silent).

        ``-1`` never releases anything real; a very large value releases everything.
        """
        if len(self._marks) < self.sources:
            return None
        active = [m.watermark for m in self._marks.values() if not m.drained]
        if not active:
            return _EVERYTHING
        if any(w is None for w in active):
            return None
        return min(w for w in active if w is not None)

    @property
    def drained(self) -> bool:
        """Whether every source's latest report says it is drained: nothing more is coming
        until one reports again."""
        marks = self._marks.values()
        return len(self._marks) == self.sources and all(m.drained for m in marks)

    def pop_ready(self) -> list[T]:
        """The items every source has passed, in event-time order."""
        limit = self.limit
        return [] if limit is None else self._pop_until(limit)

    def drain(self) -> list[T]:
        """Everything held, in order, whatever the watermarks (the run is ending)."""
        return self._pop_until(_EVERYTHING)

    def _pop_until(self, limit: int) -> list[T]:
        entries = self._queue.pop_until(limit)
        if not entries:
            return []
        last = entries[-1][0]
        self._released = last if self._released is None else max(self._released, last)
        return [entry[3] for entry in entries]

    def __len__(self) -> int:
        return len(self._queue)


_EVERYTHING = (1 << 63) - 1
