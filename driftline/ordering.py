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
"""

from __future__ import annotations

import heapq
from collections import Counter
from typing import Generic, TypeVar

__all__ = ["EventTimeBuffer"]

T = TypeVar("T")


class EventTimeBuffer(Generic[T]):
    """Holds items until the watermark passes them, then releases them in event-time order."""

    def __init__(self, lateness_ms: int = 60_000) -> None:
        if lateness_ms < 0:
            raise ValueError(f"lateness_ms must be >= 0, got {lateness_ms}")
        self.lateness_ms = lateness_ms
        self._reset()

    def _reset(self) -> None:
        self._heap: list[tuple[int, str, int, T]] = []
        self._seq = 0  # keeps equal (ts, key) items in arrival order
        self._newest: int | None = None
        self._released: int | None = None
        self.counts: Counter[str] = Counter()

    def push(self, ts: int, key: str, item: T) -> None:
        """Add an item with its event time and a tie-break key (e.g. ``"label/<event_id>"``)."""
        if self._released is not None and ts < self._released:
            self.counts["late"] += 1
        self._newest = ts if self._newest is None else max(self._newest, ts)
        heapq.heappush(self._heap, (ts, key, self._seq, item))
        self._seq += 1

    def pop_ready(self) -> list[T]:
        """Items at least ``lateness_ms`` older than the newest event time, in order."""
        if self._newest is None:
            return []
        return self._pop_until(self._newest - self.lateness_ms)

    def drain(self) -> list[T]:
        """Every item held, in order (end of a replay, or shutdown)."""
        return self._pop_until(None)

    def _pop_until(self, limit: int | None) -> list[T]:
        out: list[T] = []
        heap = self._heap
        while heap and (limit is None or heap[0][0] <= limit):
            ts, _, _, item = heapq.heappop(heap)
            self._released = ts if self._released is None else max(self._released, ts)
            out.append(item)
        return out

    def __len__(self) -> int:
        return len(self._heap)
