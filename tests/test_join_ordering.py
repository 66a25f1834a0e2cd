"""The label join and the event-time buffer: nothing lost, order restored."""

from __future__ import annotations

import heapq
import pickle
from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from driftline.events import Label, Prediction
from driftline.join import LabelJoiner
from driftline.ordering import EventTimeBuffer
from driftline.watermark import MergeBuffer


def _p(i: int, ts: int, model: str = "m") -> Prediction:
    return Prediction(f"e{i}", model, {"x": float(i)}, 0, ts=ts)


def _y(i: int, ts: int, model: str = "m") -> Label:
    return Label(f"e{i}", model, 1, ts=ts)


def test_label_first_late_twice_and_never() -> None:
    joiner = LabelJoiner(ttl_ms=100)
    assert joiner.add_label(_y(1, 10)) is None  # first: waits
    assert joiner.add_prediction(_p(1, 5)) is not None  # joined
    assert joiner.add_label(_y(1, 11)) is None  # twice: ignored, counted
    assert joiner.add_prediction(_p(2, 20)) is None  # never labelled
    assert joiner.add_label(_y(3, 30)) is None  # never predicted
    joiner.add_prediction(_p(4, 500))  # moves the watermark past every TTL
    expired = joiner.expire()
    assert [p.event_id for p in expired.predictions] == ["e2"]
    assert [y.event_id for y in expired.labels] == ["e3"]
    assert joiner.counts["joined"] == 1
    assert joiner.counts["duplicate_labels"] == 1
    assert joiner.size == 1  # only e4 is still held


def test_same_event_id_in_two_models_is_two_events() -> None:
    joiner = LabelJoiner()
    joiner.add_prediction(_p(1, 1, "a"))
    assert joiner.add_label(_y(1, 2, "b")) is None
    assert joiner.add_label(_y(1, 2, "a")) is not None


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.integers(0, 2000)), max_size=120))
def test_every_event_is_accounted_for(events: list[tuple[int, bool, int]]) -> None:
    joiner = LabelJoiner(ttl_ms=500)
    joined: set[str] = set()
    for i, is_label, ts in events:
        pair = joiner.add_label(_y(i, ts)) if is_label else joiner.add_prediction(_p(i, ts))
        if pair is not None:
            assert pair[0].event_id == pair[1].event_id
            assert pair[0].event_id not in joined  # one join per event id
            joined.add(pair[0].event_id)
    joiner.expire()
    counts = joiner.counts
    n_pred = sum(1 for _, is_label, _ in events if not is_label)
    n_label = len(events) - n_pred
    held_predictions = len(joiner._predictions)
    held_labels = len(joiner._orphans)
    assert counts["predictions"] == n_pred and counts["labels"] == n_label
    # every prediction and every label: joined, expired, still held, or a counted repeat
    assert (
        n_pred
        == counts["joined"]
        + counts["unlabelled"]
        + held_predictions
        + counts["duplicate_predictions"]
    )
    assert (
        n_label
        == counts["joined"]
        + counts["orphan_labels_expired"]
        + held_labels
        + counts["duplicate_labels"]
    )


@given(st.lists(st.integers(0, 10_000), max_size=200), st.randoms())
def test_buffer_restores_order_within_lateness(times: list[int], rnd: object) -> None:
    lateness = 50
    ordered = sorted(times)
    # Disorder bounded by the lateness: shuffle inside blocks of 50 ms of event time.
    arrival = sorted(ordered, key=lambda t: (t // lateness, rnd.random()))  # type: ignore[attr-defined]
    buffer: EventTimeBuffer[int] = EventTimeBuffer(lateness)
    out: list[int] = []
    for i, t in enumerate(arrival):
        buffer.push(t, f"{i:06d}", t)
        out += buffer.pop_ready()
    out += buffer.drain()
    assert out == ordered
    assert buffer.counts["late"] == 0


def test_late_events_are_processed_and_counted() -> None:
    buffer: EventTimeBuffer[str] = EventTimeBuffer(10)
    buffer.push(100, "a", "a")
    buffer.push(200, "b", "b")
    assert buffer.pop_ready() == ["a"]
    buffer.push(50, "late", "late")  # older than what was released
    assert buffer.counts["late"] == 1
    assert buffer.drain() == ["late", "b"]


class HeapBuffer:
    """The reference: the heap-only EventTimeBuffer the run queue replaced."""

    def __init__(self, lateness_ms: int) -> None:
        self.lateness_ms = lateness_ms
        self.heap: list[tuple[int, str, int, str]] = []
        self.seq = 0
        self.newest: int | None = None
        self.released: int | None = None
        self.late = 0

    def push(self, ts: int, key: str, item: str) -> None:
        if self.released is not None and ts < self.released:
            self.late += 1
        self.newest = ts if self.newest is None else max(self.newest, ts)
        heapq.heappush(self.heap, (ts, key, self.seq, item))
        self.seq += 1

    def pop_until(self, limit: int | None) -> list[str]:
        out = []
        while self.heap and (limit is None or self.heap[0][0] <= limit):
            ts, _, _, item = heapq.heappop(self.heap)
            self.released = ts if self.released is None else max(self.released, ts)
            out.append(item)
        return out

    def pop_ready(self) -> list[str]:
        return [] if self.newest is None else self.pop_until(self.newest - self.lateness_ms)


ARRIVALS = st.lists(
    st.tuples(
        st.sampled_from(["push", "push_many", "pop", "drain"]),
        st.lists(
            st.tuples(st.integers(0, 300), st.sampled_from(["p/a", "p/b", "y/a"])), max_size=12
        ),
        st.booleans(),  # arrive in order (sorted) or as drawn
    ),
    max_size=40,
)


@given(ARRIVALS, st.integers(0, 60))
def test_run_queue_releases_what_the_heap_released(arrivals: list[Any], lateness: int) -> None:
    """Any arrivals, batched or one by one, in order or not: the same items in the same order,
    the same late count, the same size held, as the heap-only buffer."""
    fast: EventTimeBuffer[str] = EventTimeBuffer(lateness)
    slow = HeapBuffer(lateness)
    n = 0
    for action, events, ordered in arrivals:
        if ordered:
            events = sorted(events)
        items = [f"{ts}{key}#{n + i}" for i, (ts, key) in enumerate(events)]
        n += len(events)
        if action == "push":
            for (ts, key), item in zip(events, items, strict=True):
                fast.push(ts, key, item)
                slow.push(ts, key, item)
        elif action == "push_many":
            fast.push_many([ts for ts, _ in events], [key for _, key in events], items)
            for (ts, key), item in zip(events, items, strict=True):
                slow.push(ts, key, item)
        elif action == "pop":
            assert fast.pop_ready() == slow.pop_ready()
        else:
            assert fast.drain() == slow.pop_until(None)
        assert fast.counts["late"] == slow.late
        assert len(fast) == len(slow.heap)
    assert fast.drain() == slow.pop_until(None)


def test_buffer_checkpointed_with_a_heap_restores() -> None:
    """A checkpoint of the heap-only buffer (its pickled attributes) still restores."""
    old = HeapBuffer(10)
    for ts in (5, 3, 9, 1):
        old.push(ts, "k", f"x{ts}")
    state = {
        "lateness_ms": 10,
        "_heap": old.heap,
        "_seq": old.seq,
        "_newest": old.newest,
        "_released": None,
        "counts": Counter(),
    }
    buffer: EventTimeBuffer[str] = EventTimeBuffer.__new__(EventTimeBuffer)
    buffer.__setstate__(pickle.loads(pickle.dumps(state)))
    buffer.push(30, "k", "x30")
    assert buffer.pop_ready() == ["x1", "x3", "x5", "x9"]
    assert pickle.loads(pickle.dumps(buffer)).drain() == ["x30"]
    merge: MergeBuffer[str] = MergeBuffer.__new__(MergeBuffer)
    merge.__setstate__(pickle.loads(pickle.dumps({**state, "sources": 1, "_marks": {}})))
    assert merge.drain() == ["x1", "x3", "x5", "x9"]
