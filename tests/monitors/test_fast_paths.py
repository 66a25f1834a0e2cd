"""The monitors' fast paths give exactly what the plain computations they replaced give.

Each test puts a fast path next to a reference written the straightforward way (for the window
tests and the KS/Wasserstein statistics: the code they replaced) and asks for equal results,
bit for bit: alerts carry the statistics, and the same input must give the same bytes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from driftline.events import Prediction
from driftline.monitors import _stats
from driftline.monitors.base import Signal
from driftline.monitors.categorical import CategoricalDrift, UnseenCategories
from driftline.monitors.missing import MissingRate
from driftline.monitors.model_monitor import ModelMonitor
from driftline.monitors.numeric import KSDrift, NumericDrift, WassersteinDrift
from driftline.monitors.performance import (
    AccuracyDrop,
    _probability,
    class_key,
    class_keys,
    true_class_probability,
)
from driftline.monitors.windows import WindowSpec, WindowTest

# -- KS and Wasserstein-1 ------------------------------------------------------------------------


def ks_wasserstein_reference(
    ref: _stats.SortedSample, cur_sorted: npt.NDArray[Any], cur_ranks_sorted: npt.NDArray[Any]
) -> tuple[float, float]:
    """The original implementation of :func:`driftline.monitors._stats.ks_wasserstein`."""
    n = ref.values.size
    m = cur_sorted.size
    top = max(ref.values[-1], cur_sorted[-1])
    below = np.bincount(cur_ranks_sorted, minlength=n + 1)[:n].cumsum()
    cur_pad = np.concatenate((cur_sorted, (top,)))
    gap_ref = np.minimum(ref.following, cur_pad[below])
    gap_ref -= ref.values
    diff_ref = below * (1.0 / m)
    diff_ref -= ref.cdf
    np.abs(diff_ref, out=diff_ref)
    ref_pad = np.concatenate((ref.values, (top,)))
    cur_next = np.concatenate((cur_sorted[1:], (np.inf,)))
    gap_cur = np.minimum(cur_next, ref_pad[cur_ranks_sorted])
    gap_cur -= cur_sorted
    diff_cur = cur_ranks_sorted * (1.0 / n)
    diff_cur -= np.arange(1, m + 1) * (1.0 / m)
    np.abs(diff_cur, out=diff_cur)
    d = max(float((diff_ref * (gap_ref > 0)).max()), float((diff_cur * (gap_cur > 0)).max()))
    return d, float(diff_ref @ gap_ref + diff_cur @ gap_cur)


SAMPLES = st.one_of(
    hnp.arrays(np.float64, st.integers(2, 300), elements=st.floats(-1e6, 1e6)),
    hnp.arrays(np.float64, st.integers(2, 300), elements=st.integers(-3, 3).map(float)),  # ties
)


@settings(max_examples=300)
@given(SAMPLES, SAMPLES, st.floats(-3, 3))
def test_ks_wasserstein_is_the_original_bit_for_bit(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64], shift: float
) -> None:
    sample = _stats.SortedSample.of(np.sort(ref))
    current = np.sort(cur + shift)
    ranks = np.sort(_stats.right_ranks(sample.values, current))
    assert _stats.ks_wasserstein(sample, current, ranks) == ks_wasserstein_reference(
        sample, current, ranks
    )


@given(SAMPLES, SAMPLES)
def test_right_ranks_are_searchsorted(ref: npt.NDArray[Any], values: npt.NDArray[Any]) -> None:
    values = np.concatenate([values] * 3)  # past the size where the ranks are found sorted
    ranks = _stats.right_ranks(np.sort(ref), values)
    assert ranks.dtype == np.intp
    assert ranks.tolist() == np.sort(ref).searchsorted(values, side="right").tolist()


def test_reference_sample_pickles_without_its_padding() -> None:
    import pickle

    sample = _stats.SortedSample.of(np.arange(5.0))
    assert sample.padded.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, math.inf]
    restored = pickle.loads(pickle.dumps(sample))
    assert "padded" not in vars(restored) and restored.padded.tolist() == sample.padded.tolist()


def test_psi_read_later_is_the_psi_computed_then() -> None:
    """PSI is computed when ``statistics`` is read unless it decides: the same number."""
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=2000), rng.normal(0.4, size=2000)])
    ts = np.arange(values.size, dtype=np.int64)
    eager, lazy = NumericDrift(), WassersteinDrift()
    for start in range(0, values.size, 250):
        eager.update_many(values[start : start + 250], ts[start : start + 250])
        lazy.update_many(values[start : start + 250], ts[start : start + 250])
        if eager.statistics:
            assert lazy.statistics == eager.statistics
            assert list(lazy.statistics) == ["psi", "ks", "ks_p_value", "wasserstein"]


# -- window tests: one pass per batch against one ring-buffer write per check ----------------------


def chunked_update_many(
    detector: WindowTest, values: npt.NDArray[Any], ts: npt.NDArray[np.int64]
) -> list[Signal]:
    """The original ``WindowTest.update_many``: write the ring up to each check, then check it."""
    kept, positions = detector._observe(np.asarray(values))
    kept_ts = ts if positions is None else ts[positions]
    start = 0
    if detector._ref_info is None:
        start = detector._fill_reference(kept, kept_ts)
    signals: list[Signal] = []
    if start == kept.size:
        return signals
    columns = detector._encode(kept[start:])
    every = detector.window.check_every
    i = start
    while i < kept.size:
        j = min(kept.size, i + every - detector._since_check)
        detector._current.extend(kept_ts[i:j], *(c[i - start : j - start] for c in columns))
        detector._newest = max(detector._newest, int(kept_ts[i:j].max()))
        detector._since_check += j - i
        if detector._since_check == every:
            detector._since_check = 0
            index = j - 1 if positions is None else int(positions[j - 1])
            signal = detector._check(index, int(kept_ts[j - 1]), *detector._current.contents())
            if signal is not None:
                signals.append(signal)
        i = j
    return signals


WINDOWS = [
    WindowSpec(reference_size=300, window_size=200, check_every=50),
    WindowSpec(reference_size=200, window_size=100, check_every=150, min_size=60),
    WindowSpec(reference_size=300, window_size=200, check_every=40, window_ms=1500),
]
Factory = Callable[[WindowSpec], WindowTest]
FACTORIES: list[tuple[str, Factory]] = [
    ("numeric", lambda w: NumericDrift(window=w, persistence=1)),
    ("numeric", lambda w: KSDrift(window=w, persistence=2)),
    ("numeric", lambda w: WassersteinDrift(window=w, persistence=1)),
    ("numeric", lambda w: MissingRate(window=w, persistence=1)),
    ("categorical", lambda w: CategoricalDrift(window=w, persistence=1)),
    ("categorical", lambda w: UnseenCategories(window=w, persistence=1)),
    ("binary", lambda w: AccuracyDrop(window=w, persistence=1)),
]


def _stream(kind: str, seed: int, n: int = 3000) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    half = n // 2
    if kind == "numeric":
        values = np.concatenate([rng.normal(size=half), rng.normal(0.8, 1.5, size=n - half)])
        values[rng.random(n) < np.where(np.arange(n) < half, 0.05, 0.3)] = np.nan
    elif kind == "categorical":
        first = rng.choice(np.array(["a", "b", "c"], dtype=object), size=half, p=[0.6, 0.3, 0.1])
        second = rng.choice(np.array(["a", "c", "d", None], dtype=object), size=n - half)
        values = np.concatenate([first, second])
    else:
        values = np.concatenate([rng.random(half) < 0.1, rng.random(n - half) < 0.4]).astype(float)
    ts = np.cumsum(rng.integers(0, 20, size=n)).astype(np.int64)  # repeats and jumps
    return values, ts


@pytest.mark.parametrize("window", WINDOWS, ids=["counts", "sparse_checks", "window_ms"])
@pytest.mark.parametrize(("kind", "factory"), FACTORIES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_window_tests_decide_as_the_ring_buffer_did(
    kind: str, factory: Factory, window: WindowSpec, seed: int, sizes: list[int]
) -> None:
    values, ts = _stream(kind, seed)
    fast, slow = factory(window), factory(window)
    start, k = 0, 0
    while start < values.size:
        stop = min(values.size, start + sizes[k % len(sizes)])
        got = fast.update_many(values[start:stop], ts[start:stop])
        assert got == chunked_update_many(slow, values[start:stop], ts[start:stop])
        assert (fast.statistic, fast.drifting) == (slow.statistic, slow.drifting)
        start, k = stop, k + 1
    later = copy.deepcopy(fast)  # the ring holds the same rows, whatever their places
    assert later.update_many(values[:500], ts[:500] + int(ts[-1])) == chunked_update_many(
        slow, values[:500], ts[:500] + int(ts[-1])
    )


# -- model monitor and performance -------------------------------------------------------------

FEATURE = st.one_of(st.none(), st.floats(-5, 5), st.integers(-3, 3), st.booleans(), st.text("ab"))


@st.composite
def predictions(draw: st.DrawFn, names: list[str]) -> list[Prediction]:
    """Rows of ``names`` features: all of them, with scores (regular, as most batches), or not."""
    regular = draw(st.booleans())
    rows = []
    for i in range(draw(st.integers(1, 30))):
        if regular:
            features = {k: draw(st.floats(-5, 5) | st.integers(-3, 3)) for k in names}
            scores: dict[str, float] | None = {"0": 0.4, "1": 0.6}
        else:
            features = {k: draw(FEATURE) for k in draw(st.lists(st.sampled_from(names)))}
            scores = draw(st.one_of(st.none(), st.just({"0": 0.4, "1": 0.6}), st.just({"1": 1.0})))
        rows.append(
            Prediction(f"e{i}", "m", features, draw(st.integers(0, 1)), ts=i, scores=scores)
        )
    return rows


NAMES = st.lists(st.sampled_from(["x", "y", "z", "w"]), min_size=1, unique=True)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), names=NAMES)
def test_gathered_columns_are_the_values_of_each_stream(
    data: st.DataObject, names: list[str]
) -> None:
    """Taken in C or one stream at a time, the same values; and discovery sees every stream."""
    monitor = ModelMonitor("m", reference=None)
    for _ in range(data.draw(st.integers(1, 4))):
        rows = data.draw(predictions(names))
        watches = monitor._inputs.setdefault((), {})
        gathered = monitor._gather(watches, rows)
        if gathered is not None:
            before = dict(watches)
            monitor._discover(watches, rows)
            assert watches == before  # nothing left to discover
            features = [p.features for p in rows]
            for key in watches:
                slow = ModelMonitor._values(key, rows, features)
                assert [(type(v), v) for v in gathered[key]] == [(type(v), v) for v in slow]
        monitor.observe_predictions(rows)


LABELS = st.lists(
    st.one_of(st.integers(-2, 12), st.text("ab01", max_size=2), st.booleans(), st.floats(0, 3)),
    max_size=40,
)


@given(LABELS)
def test_class_keys_are_each_class_key(labels: list[Any]) -> None:
    assert class_keys(labels) == [class_key(v) for v in labels]
    assert class_keys([int(v) for v in labels if type(v) is int]) == [
        class_key(int(v)) for v in labels if type(v) is int
    ]


SCORES = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["0", "1", "a", "true"]), st.floats(0, 1) | st.integers(0, 1)),
)


@given(st.lists(st.tuples(st.sampled_from([0, 1, "a", True]), SCORES), max_size=30))
def test_true_class_probability_is_read_row_by_row(rows: list[tuple[Any, Any]]) -> None:
    labels = [label for label, _ in rows]
    scores = [s for _, s in rows]
    expected = [
        math.nan if s is None else float(s.get(class_key(y), 0.0))
        for y, s in zip(labels, scores, strict=True)
    ]
    got = true_class_probability(labels, scores).tolist()
    assert [repr(v) for v in got] == [repr(v) for v in expected]
    keys = [class_key(y) for y in labels]
    assert [repr(v) for v in _probability(keys, scores).tolist()] == [repr(v) for v in expected]


@given(
    st.lists(st.tuples(st.sampled_from([0, 1, 2, "a", True, 1.0]), st.sampled_from([0, 1, "a"])))
)
def test_errors_are_compared_pair_by_pair(pairs: list[tuple[Any, Any]]) -> None:
    monitor = ModelMonitor("m")
    monitor._task = "classification"
    predicted, labels = [p for p, _ in pairs], [y for _, y in pairs]
    expected = [
        float((a != b) if type(a) is type(b) else class_key(a) != class_key(b)) for a, b in pairs
    ]
    assert monitor._errors(predicted, labels).tolist() == expected


@given(
    st.one_of(
        st.lists(st.integers(-(2**70), 2**70)),
        st.lists(st.integers(-3, 12)),
        st.lists(st.text(max_size=3)),
        st.lists(st.sampled_from(["a", "b\x00", "b", "\x00"])),
        LABELS,
    )
)
def test_distinct_labels_are_numpys_unique_keys(labels: list[Any]) -> None:
    from driftline.monitors.performance import _distinct

    keys, inverse = _distinct(labels)
    unique, expected = np.unique(np.array(class_keys(labels), dtype=str), return_inverse=True)
    assert keys == unique.tolist()
    assert inverse.dtype == np.intp and inverse.tolist() == expected.reshape(-1).tolist()
