"""Event-time order out of arrival order: a reorder buffer with a watermark.

Kafka interleaves two topics and many partitions differently on every run; a file replay reads
them in one fixed order. Both feed driftline through this buffer, which releases events sorted by
``(ts, kind, event_id)`` once they are ``lateness_ms`` behind the newest event time seen. So the
monitors see the same sequence, and raise the same alerts, whatever the arrival order, as long as
no event arrives more than ``lateness_ms`` late. A later event is still processed (never dropped)
right away, and counted as ``late``.

>>> buffer = EventTimeBuffer(lateness_ms=10)
>>> buffer.push(5, "b", "x5")
>>> buffer.push(3, "a", "x3")
>>> buffer.pop_ready()  # nothing is 10 ms behind the newest (5) yet
[]
>>> buffer.push(20, "c", "x20")
>>> buffer.pop_ready()
['x3', 'x5']
>>> buffer.drain()
['x20']

Items are held in a :class:`RunQueue`: events mostly arrive in order, stream by stream, so an
item that is not older than the last item of a *run* (a sorted list) is appended to it, and only
the others go to a heap. A release takes the due prefix of each run (a binary search) and the due
items of the heap, and merges these few sorted lists with one ``sort``. The order is exactly the
heap's ``(ts, key, arrival)`` order, at a fraction of its cost per item.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, Generic, TypeAlias, TypeVar

__all__ = ["Entry", "EventTimeBuffer", "RunQueue"]

T = TypeVar("T")
#: ``(ts, key, arrival number, item)``: an item in the buffer; the first three sort it.
Entry: TypeAlias = tuple[int, str, int, T]

#: Most runs kept: one per stream that arrives in order (predictions, labels, partitions...),
#: plus a few for stragglers. Items that fit none go to the heap.
MAX_RUNS = 4
_TS = itemgetter(0)
_ITEM = itemgetter(3)


class _Run:
    """A sorted list of entries, read from ``head`` on."""

    __slots__ = ("entries", "head")

    def __init__(self, entries: list[Any]) -> None:
        self.entries = entries
        self.head = 0


class RunQueue(Generic[T]):
    """Entries sorted by ``(ts, key, arrival)``, released up to an event time.

    A released prefix of a run is dropped once it is half of the run, so that dropping stays
    linear overall; the heap takes what no run can.

    >>> queue: RunQueue[str] = RunQueue()
    >>> for ts, key in [(1, "p"), (3, "p"), (2, "y"), (4, "y"), (0, "z")]:
    ...     queue.add(ts, key, f"{key}{ts}")
    >>> [item for *_, item in queue.pop_until(3)], len(queue)
    (['z0', 'p1', 'y2', 'p3'], 1)
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._heap: list[Entry[T]] = []
        self._seq = 0  # the arrival number: keeps equal (ts, key) items in arrival order

    @staticmethod
    def upgrade(state: dict[str, Any]) -> dict[str, Any]:
        """A buffer's pickled state with its ``_queue``: a checkpoint of the heap-only buffers
        (``_heap`` and ``_seq``, no runs) gets a queue holding the same entries."""
        state = dict(state)
        heap, seq = state.pop("_heap", None), state.pop("_seq", 0)
        if heap is not None:
            queue: RunQueue[Any] = RunQueue()
            queue._heap, queue._seq = heap, seq
            state["_queue"] = queue
        return state

    def add(self, ts: int, key: str, item: T) -> None:
        """Hold one item."""
        entry = (ts, key, self._seq, item)
        self._seq += 1
        for run in self._runs:
            last = run.entries[-1]
            if ts > last[0] or (ts == last[0] and key >= last[1]):
                run.entries.append(entry)
                return
        if len(self._runs) < MAX_RUNS:
            self._runs.append(_Run([entry]))
        else:
            heapq.heappush(self._heap, entry)

    def add_many(self, ts: Sequence[int], keys: Sequence[str], items: Sequence[T]) -> None:
        """Hold ``items[i]`` at ``ts[i]`` with ``keys[i]``, in that order of arrival.

        The batch is sorted once (in order already, it costs a comparison per item) and kept
        as one run: appended to the first run it follows, else a new run while there is room,
        else item by item into the heap.
        """
        seq = self._seq
        batch = list(zip(ts, keys, range(seq, seq + len(items)), items, strict=True))
        if not batch:
            return
        self._seq = seq + len(batch)
        batch.sort()  # no two entries are equal (arrival numbers differ): items never compared
        first = batch[0]
        for run in self._runs:
            if run.entries[-1] < first:
                run.entries.extend(batch)
                return
        if len(self._runs) < MAX_RUNS:
            self._runs.append(_Run(batch))
        else:
            for entry in batch:
                heapq.heappush(self._heap, entry)

    def pop_until(self, limit: int | None) -> list[Entry[T]]:
        """The entries with ``ts <= limit`` (every entry for None), in order, removed."""
        parts: list[list[Entry[T]]] = []
        kept: list[_Run] = []
        for run in self._runs:
            entries, head = run.entries, run.head
            cut = len(entries) if limit is None else bisect_right(entries, limit, head, key=_TS)
            if cut > head:
                parts.append(entries[head:cut])
                if cut == len(entries):
                    continue  # the run is used up
                if cut > len(entries) // 2:
                    del entries[:cut]
                    cut = 0
                run.head = cut
            kept.append(run)
        self._runs = kept
        heap = self._heap
        if heap and (limit is None or heap[0][0] <= limit):
            due = []
            while heap and (limit is None or heap[0][0] <= limit):
                due.append(heapq.heappop(heap))
            parts.append(due)
        if len(parts) == 1:
            return parts[0]
        out = list(itertools.chain.from_iterable(parts))
        out.sort()  # a merge of sorted parts; no two entries are equal (arrival numbers differ)
        return out

    def __len__(self) -> int:
        return sum(len(run.entries) - run.head for run in self._runs) + len(self._heap)


class EventTimeBuffer(Generic[T]):
    """Holds items until the watermark passes them, then releases them in event-time order."""

    def __init__(self, lateness_ms: int = 60_000) -> None:
        if lateness_ms < 0:
            raise ValueError(f"lateness_ms must be >= 0, got {lateness_ms}")
        self.lateness_ms = lateness_ms
        self._reset()

    def _reset(self) -> None:
        self._queue: RunQueue[T] = RunQueue()
        self._newest: int | None = None
        self._released: int | None = None
        self.counts: Counter[str] = Counter()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(RunQueue.upgrade(state))

    def push(self, ts: int, key: str, item: T) -> None:
        """Add an item with its event time and a tie-break key (e.g. ``"label/<event_id>"``)."""
        if self._released is not None and ts < self._released:
            self.counts["late"] += 1
        if self._newest is None or ts > self._newest:
            self._newest = ts
        self._queue.add(ts, key, item)

    def push_many(self, ts: Sequence[int], keys: Sequence[str], items: Sequence[T]) -> None:
        """:meth:`push` ``items[i]`` with ``ts[i]`` and ``keys[i]``, in that order."""
        if not items:
            return
        released = self._released
        if released is not None and min(ts) < released:
            self.counts["late"] += sum(1 for t in ts if t < released)
        newest = max(ts)
        if self._newest is None or newest > self._newest:
            self._newest = newest
        self._queue.add_many(ts, keys, items)

    def pop_ready(self) -> list[T]:
        """Items at least ``lateness_ms`` older than the newest event time, in order."""
        return list(map(_ITEM, self.pop_ready_entries()))

    def drain(self) -> list[T]:
        """Every item held, in order (end of a replay, or shutdown)."""
        return list(map(_ITEM, self.drain_entries()))

    def pop_ready_entries(self) -> list[Entry[T]]:
        """:meth:`pop_ready` with each item's ``(ts, key, arrival number)``."""
        if self._newest is None:
            return []
        return self._pop_until(self._newest - self.lateness_ms)

    def drain_entries(self) -> list[Entry[T]]:
        """:meth:`drain` with each item's ``(ts, key, arrival number)``."""
        return self._pop_until(None)

    def _pop_until(self, limit: int | None) -> list[Entry[T]]:
        out = self._queue.pop_until(limit)
        if out:
            last = out[-1][0]
            self._released = last if self._released is None else max(self._released, last)
        return out

    def __len__(self) -> int:
        return len(self._queue)
