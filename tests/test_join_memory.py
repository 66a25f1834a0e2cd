"""The join's memory: joined ids as digests, a dedupe horizon, old checkpoints, same output."""

from __future__ import annotations

import base64
import pickle
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.events import Label, Prediction
from driftline.join import JoinedIds, LabelJoiner, digest
from driftline.pipeline import JoinStage, PipelineSpec
from driftline.settings import Settings


def _p(i: int, ts: int | None, model: str = "m") -> Prediction:
    return Prediction(f"e{i}", model, {"x": float(i)}, 0, ts=ts)


def _y(i: int, ts: int | None, model: str = "m") -> Label:
    return Label(f"e{i}", model, 1, ts=ts)


class DictJoiner:
    """The reference: the joiner as it was, joined keys as strings in a dict, expiry by
    ``next(iter(...))``. Its ``vars()`` are what an old checkpoint holds."""

    def __init__(self, ttl_ms: int) -> None:
        self.ttl_ms = ttl_ms
        self._predictions: dict[str, tuple[int, Prediction]] = {}
        self._orphans: dict[str, tuple[int, Label]] = {}
        self._joined: dict[str, int] = {}
        self._watermark = 0
        self.counts: Counter[str] = Counter()

    def _now(self, ts: int | None) -> int:
        if ts is None:
            return self._watermark
        self._watermark = max(self._watermark, ts)
        return ts

    def add_prediction(self, prediction: Prediction) -> tuple[Prediction, Label] | None:
        ts = self._now(prediction.ts)
        key = prediction.model + "\x00" + prediction.event_id
        self.counts["predictions"] += 1
        if key in self._predictions or key in self._joined:
            self.counts["duplicate_predictions"] += 1
            return None
        orphan = self._orphans.pop(key, None)
        if orphan is not None:
            self._joined[key] = ts + self.ttl_ms
            self.counts["joined"] += 1
            return prediction, orphan[1]
        self._predictions[key] = (ts + self.ttl_ms, prediction)
        return None

    def add_label(self, label: Label) -> tuple[Prediction, Label] | None:
        ts = self._now(label.ts)
        key = label.model + "\x00" + label.event_id
        self.counts["labels"] += 1
        if key in self._joined or key in self._orphans:
            self.counts["duplicate_labels"] += 1
            return None
        held = self._predictions.pop(key, None)
        if held is None:
            self._orphans[key] = (ts + self.ttl_ms, label)
            return None
        self._joined[key] = ts + self.ttl_ms
        self.counts["joined"] += 1
        return held[1], label

    def expire(self) -> tuple[list[Any], list[Any]]:
        now = self._watermark
        out: tuple[list[Any], list[Any]] = ([], [])
        stores: tuple[dict[str, Any], dict[str, Any]] = (self._predictions, self._orphans)
        for store, sink in zip(stores, out, strict=True):
            while store:
                key = next(iter(store))
                expiry, event = store[key]
                if expiry > now:
                    break
                del store[key]
                sink.append(event)
        while self._joined and self._joined[next(iter(self._joined))] <= now:
            del self._joined[next(iter(self._joined))]
        self.counts["unlabelled"] += len(out[0])
        self.counts["orphan_labels_expired"] += len(out[1])
        return out

    @property
    def size(self) -> int:
        return len(self._predictions) + len(self._orphans) + len(self._joined)


#: ("p" | "y" | "x" for expire, event id, model, ts or None)
STEPS = st.lists(
    st.tuples(
        st.sampled_from("ppyyx"),
        st.integers(0, 25),
        st.sampled_from("ab"),
        st.one_of(st.none(), st.integers(0, 3000)),
    ),
    max_size=150,
)


def _step(joiner: Any, step: tuple[str, int, str, int | None]) -> Any:
    """One step; what it returned, comparable across joiners."""
    kind, i, model, ts = step
    if kind == "p":
        return joiner.add_prediction(_p(i, ts, model))
    if kind == "y":
        return joiner.add_label(_y(i, ts, model))
    out = joiner.expire()
    return out if isinstance(out, tuple) else (out.predictions, out.labels)


def _same(new: LabelJoiner, old: DictJoiner) -> None:
    assert new.size == old.size
    assert new.counts == old.counts
    assert new.watermark == old._watermark


@given(STEPS, st.integers(1, 1500))
def test_same_output_as_the_dict_joiner(steps: list[Any], ttl: int) -> None:
    """Any events, in any event-time order, and any expiry calls: the same pairs, expiries
    and counts as with joined keys as strings (no digest collides among a few dozen ids)."""
    new, old = LabelJoiner(ttl_ms=ttl), DictJoiner(ttl)
    for step in steps:
        assert _step(new, step) == _step(old, step)
        _same(new, old)


@given(STEPS, st.integers(0, 150), st.integers(1, 1500), st.sampled_from([None, 0, 200]))
def test_restored_checkpoint_gives_the_same_future_output(
    steps: list[Any], cut: int, ttl: int, dedupe: int | None
) -> None:
    live = LabelJoiner(ttl_ms=ttl, dedupe_ms=dedupe)
    for step in steps[:cut]:
        _step(live, step)
    restored = pickle.loads(pickle.dumps(live))
    assert restored.dedupe_ms == live.dedupe_ms and restored.size == live.size
    for step in steps[cut:]:
        assert _step(restored, step) == _step(live, step)
        assert restored.counts == live.counts and restored.size == live.size


@given(STEPS, st.integers(0, 150), st.integers(1, 1500))
def test_old_checkpoint_restores_and_goes_on_as_before(
    steps: list[Any], cut: int, ttl: int
) -> None:
    """A checkpoint of the old joiner (its attributes, joined keys in a dict) restores, and
    the restored joiner goes on exactly as the old one would have."""
    old = DictJoiner(ttl)
    for step in steps[:cut]:
        _step(old, step)
    checkpoint = LabelJoiner.__new__(LabelJoiner)
    checkpoint.__dict__.update(vars(old))  # pickled as the old LabelJoiner was
    restored = pickle.loads(pickle.dumps(checkpoint))
    assert isinstance(restored._joined, JoinedIds) and restored.dedupe_ms == ttl
    _same(restored, old)
    for step in steps[cut:]:
        assert _step(restored, step) == _step(old, step)
        _same(restored, old)


#: A checkpoint written by the old LabelJoiner (ttl 100): e1 joined at 20, e4 joined by a late
#: label at 25 (behind e1), e2 an orphan label, e3 a pending prediction; watermark 45.
OLD_CHECKPOINT = base64.b64decode(
    "gAWVfQEAAAAAAACMDmRyaWZ0bGluZS5qb2lulIwLTGFiZWxKb2luZXKUk5QpgZR9lCiMBnR0bF9tc5RLZIwMX3ByZWRpY3Rp"
    "b25zlH2UjARtAGUzlEuMjBBkcmlmdGxpbmUuZXZlbnRzlIwKUHJlZGljdGlvbpSTlCmBlF2UKIwCZTOUjAFtlH2UjAF4lEdA"
    "CAAAAAAAAHNLAU5LKE5OZWKGlHOMCF9vcnBoYW5zlH2UjARtAGUylEuCaAmMBUxhYmVslJOUKYGUXZQojAJlMpRoD0sASx5l"
    "YoaUc4wHX2pvaW5lZJR9lCiMBG0AZTGUS3iMBG0AZTSUS311jApfd2F0ZXJtYXJrlEstjAZjb3VudHOUjAtjb2xsZWN0aW9u"
    "c5SMB0NvdW50ZXKUk5R9lCiMC3ByZWRpY3Rpb25zlEsDjAZsYWJlbHOUSwOMBmpvaW5lZJRLAowKdW5sYWJlbGxlZJRLAIwV"
    "b3JwaGFuX2xhYmVsc19leHBpcmVklEsAdYWUUpR1Yi4="
)


def test_checkpoint_bytes_of_the_old_joiner_restore() -> None:
    joiner = pickle.loads(OLD_CHECKPOINT)
    assert (joiner.ttl_ms, joiner.dedupe_ms, joiner.watermark, joiner.size) == (100, 100, 45, 4)
    assert joiner.add_label(_y(1, 50)) is None  # e1 is remembered: a repeat
    assert joiner.add_label(_y(4, 50)) is None
    assert joiner.counts["duplicate_labels"] == 2
    e3 = Prediction("e3", "m", {"x": 3.0}, 1, ts=40)
    assert joiner.add_label(_y(3, 60)) == (e3, _y(3, 60))  # the pending prediction
    joiner.add_prediction(_p(9, 122))
    assert joiner.expire().labels == []  # e2 is due at 130
    assert joiner.add_label(_y(4, 122)) is None  # e4 is remembered until 125: a repeat
    assert joiner.counts["duplicate_labels"] == 3
    assert joiner.add_label(_y(1, 122)) is None  # e1 was forgotten at 120: an orphan
    assert joiner.counts["duplicate_labels"] == 3 and len(joiner._orphans) == 2
    joiner.add_prediction(_p(9, 130))
    assert joiner.expire().labels == [Label("e2", "m", 0, ts=30)]
    assert len(joiner._joined) == 1  # e3, joined at 60, is remembered until 160


def test_repeats_within_the_dedupe_horizon_are_ignored_and_later_ones_wait() -> None:
    joiner = LabelJoiner(ttl_ms=1000, dedupe_ms=100)
    assert joiner.add_prediction(_p(1, 0)) is None
    assert joiner.add_label(_y(1, 10)) is not None  # joined at 10, remembered until 110
    assert joiner.add_label(_y(1, 50)) is None
    assert joiner.add_prediction(_p(1, 60)) is None
    assert joiner.counts["duplicate_labels"] == joiner.counts["duplicate_predictions"] == 1
    joiner.add_prediction(_p(2, 110))
    joiner.expire()
    assert len(joiner._joined) == 0
    assert joiner.add_label(_y(1, 120)) is None  # past the horizon: an orphan, not a repeat
    assert joiner.counts["duplicate_labels"] == 1 and len(joiner._orphans) == 1
    joiner.add_prediction(_p(3, 1120))
    expired = joiner.expire()
    assert expired.labels == [_y(1, 120)]  # counted when it expires, never lost
    assert joiner.counts["orphan_labels_expired"] == 1


@given(STEPS, st.integers(1, 800), st.integers(0, 800))
def test_every_event_is_accounted_for_with_any_horizon(
    steps: list[Any], ttl: int, dedupe: int
) -> None:
    joiner = LabelJoiner(ttl_ms=ttl, dedupe_ms=dedupe)
    for step in steps:
        _step(joiner, step)
    joiner.expire()
    c = joiner.counts
    held = len(joiner._predictions), len(joiner._orphans)
    predictions = c["joined"] + c["unlabelled"] + held[0] + c["duplicate_predictions"]
    labels = c["joined"] + c["orphan_labels_expired"] + held[1] + c["duplicate_labels"]
    assert (c["predictions"], c["labels"]) == (predictions, labels)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 40), st.integers(0, 60)), max_size=300))
def test_joined_ids_is_a_set_that_forgets_in_arrival_order(ops: list[Any]) -> None:
    """Small digests collide in the table's slots and wrap around its end, so probing and
    deletion are exercised; the reference is a dict in arrival order."""
    ids, reference = JoinedIds(), {}
    now = 0
    for add, key, t in ops:
        if add and key not in reference:
            ids.add(key, t)
            reference[key] = t
        elif not add:
            now = max(now, t)
            due = 0
            while reference and reference[next(iter(reference))] <= now:
                del reference[next(iter(reference))]
                due += 1
            assert ids.expire(now) == due
        assert len(ids) == len(reference)
        assert [k for k in range(1, 41) if k in ids] == sorted(reference)
    assert [k for k in range(1, 41) if k in pickle.loads(pickle.dumps(ids))] == sorted(reference)


def test_joined_ids_grow_and_shrink() -> None:
    ids = JoinedIds()
    keys = [digest(f"m\x00e{i}") for i in range(20_000)]
    for i, key in enumerate(keys):
        ids.add(key, i)
    big = sys.getsizeof(ids)
    assert ids.expire(19_989) == 19_990 and len(ids) == 10
    assert all(key in ids for key in keys[-10:]) and not any(key in ids for key in keys[:-10])
    assert sys.getsizeof(ids) < big / 20  # the table shrank and the arrays were compacted


def _joined_many(n: int) -> tuple[LabelJoiner, DictJoiner]:
    new, old = LabelJoiner(ttl_ms=10**12), DictJoiner(10**12)
    for joiner in (new, old):
        for i in range(n):
            ts = 1_764_000_000_000 + 1000 * i
            event_id = f"{i:08x}-0000-4000-8000-{i:012x}"  # a UUID, as services send them
            joiner.add_prediction(Prediction(event_id, "fraud", {}, 0, ts=ts))
            joiner.add_label(Label(event_id, "fraud", 1, ts=ts + 50_000))
    return new, old


def test_memory_and_checkpoint_per_joined_id() -> None:
    """Measured on 50,000 ids with UUID event ids (3.11, 64-bit): 39 bytes of memory and 16
    of checkpoint per id, against 161 and 53 with the keys in a dict."""
    n = 50_000
    new, old = _joined_many(n)
    memory = sys.getsizeof(new._joined) / n
    entries = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in old._joined.items())
    old_memory = (sys.getsizeof(old._joined) + entries) / n
    checkpoint = len(pickle.dumps(new._joined)) / n
    old_checkpoint = len(pickle.dumps(old._joined)) / n
    assert memory <= 48
    assert checkpoint <= 16.1
    assert old_memory > 3.5 * memory and old_checkpoint > 3 * checkpoint
    # the whole joiner: nothing else grows with the joined ids
    assert len(pickle.dumps(new)) < n * 16.1 + 1000


def test_the_setting_reaches_the_joiner() -> None:
    spec = Settings.load(pipeline={"join_dedupe_ms": 3_600_000}).pipeline_spec()
    assert JoinStage(spec).joiner.dedupe_ms == 3_600_000
    assert JoinStage(PipelineSpec(join_ttl_ms=5000)).joiner.dedupe_ms == 5000
    old_spec = PipelineSpec.__new__(PipelineSpec)
    old_spec.__dict__.update({k: v for k, v in vars(PipelineSpec()).items() if "dedupe" not in k})
    assert pickle.loads(pickle.dumps(old_spec)).join_dedupe_ms is None
    with pytest.raises(ValueError, match="dedupe_ms"):
        LabelJoiner(dedupe_ms=-1)
