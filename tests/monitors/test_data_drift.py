"""Behaviour of the data-drift detectors: numeric, categorical and missing-rate window tests.

The statistics are checked against independent implementations (scipy); the decisions against
hand-made streams whose answer is known.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftline.errors import ConfigError
from driftline.monitors import _stats
from driftline.monitors.categorical import CategoricalDrift, UnseenCategories
from driftline.monitors.missing import MissingRate
from driftline.monitors.numeric import KSDrift, NumericDrift, WassersteinDrift
from driftline.monitors.windows import RingBuffer, WindowSpec


def times(n: int, start: int = 0, step: int = 10) -> npt.NDArray[np.int64]:
    return start + step * np.arange(n, dtype=np.int64)


def feed(detector: Any, values: npt.ArrayLike, start: int = 0) -> list[Any]:
    array = np.asarray(values)
    return list(detector.update_many(array, times(array.size, start)))


# -- statistics against scipy -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("discrete", [False, True])
def test_ks_and_wasserstein_match_scipy(seed: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 300)), int(rng.integers(5, 200))
    if discrete:
        ref, cur = rng.integers(0, 6, n).astype(float), rng.integers(1, 8, m).astype(float)
    else:
        ref, cur = rng.normal(size=n), rng.normal(0.3, 1.5, size=m)
    sample = _stats.SortedSample.of(np.sort(ref))
    ranks = np.sort(sample.values.searchsorted(cur, side="right"))
    d, w1 = _stats.ks_wasserstein(sample, np.sort(cur), ranks)
    assert d == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    assert w1 == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.2, 0.3])
def test_ks_pvalue_close_to_scipy_asymptotic(shift: float) -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=1000), rng.normal(shift, size=500)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    p = _stats.ks_pvalue(float(expected.statistic), 1000, 500)
    assert p == pytest.approx(expected.pvalue, rel=0.06, abs=1e-9)


def test_psi_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=2000), rng.normal(0.4, 1.2, size=700)
    edges = np.quantile(ref, np.arange(1, 10) / 10)
    bins = np.concatenate(([-np.inf], edges, [np.inf]))
    r = np.maximum(np.histogram(ref, bins)[0] / ref.size, 1e-4)
    c = np.maximum(np.histogram(cur, bins)[0] / cur.size, 1e-4)
    expected = float(np.sum((c - r) * np.log(c / r)))
    ours_edges = _stats.quantile_edges(np.sort(ref), 10)
    got = _stats.psi(
        _stats.bin_shares(np.sort(ref), ours_edges), _stats.bin_shares(np.sort(cur), ours_edges)
    )
    assert got == pytest.approx(expected, rel=1e-12)


def test_psi_floors_empty_bins() -> None:
    ref = np.sort(np.random.default_rng(3).normal(size=1000))
    edges = _stats.quantile_edges(ref, 10)
    far = np.full(100, 50.0)
    value = _stats.psi(_stats.bin_shares(ref, edges), _stats.bin_shares(far, edges))
    assert math.isfinite(value) and value > 5


def test_js_and_chi_square_match_scipy() -> None:
    ref = np.array([500.0, 300.0, 200.0, 0.0])
    cur = np.array([90.0, 160.0, 210.0, 40.0])
    distance, p_value = _stats.compare_histograms(ref, cur)
    assert distance == pytest.approx(jensenshannon(ref, cur, base=2), rel=1e-12)
    expected = stats.chi2_contingency(np.vstack((ref, cur)), correction=False).pvalue
    assert p_value == pytest.approx(expected, rel=1e-9)
    assert _stats.compare_histograms(np.array([5.0, 0.0]), np.array([7.0, 0.0])) == (0.0, 1.0)
    assert _stats.compare_histograms(np.array([5.0, 0.0]), np.array([0.0, 7.0]))[0] == 1.0


def test_two_proportion_test_is_the_2x2_chi_square() -> None:
    table = np.array([[40, 960], [95, 405]])
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert _stats.two_proportion_pvalue(40, 1000, 95, 500) == pytest.approx(expected, rel=1e-9)
    assert _stats.two_proportion_pvalue(0, 1000, 0, 500) == 1.0


def test_missing_mask_is_none_nan_and_infinity() -> None:
    numbers = np.array([0.0, np.nan, np.inf, -np.inf, 1e308])
    assert _stats.missing_mask(numbers).tolist() == [False, True, True, True, False]
    objects = np.array(["x", None, float("nan"), float("-inf"), False, 3, np.float64("nan")])
    assert _stats.missing_mask(objects).tolist() == [False, True, True, True, False, False, True]
    assert not _stats.missing_mask(np.array(["a", "b"])).any()


def test_ring_buffer_keeps_the_last_rows() -> None:
    ring = RingBuffer(5, np.float64)
    for chunk in (np.arange(3), np.arange(3, 4), np.arange(4, 12), np.arange(12, 14)):
        ring.extend(chunk.astype(np.int64), chunk.astype(np.float64))
    ts, (values,) = ring.contents()
    assert sorted(ts.tolist()) == [9, 10, 11, 12, 13] == sorted(values.tolist())
    assert len(ring) == 5


# -- numeric ------------------------------------------------------------------------------------

ONE_CHECK = WindowSpec(window_size=200, check_every=200, min_size=200)


def test_numeric_statistics_match_scipy_through_the_detector() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=300), rng.normal(0.3, 1.0, size=200)
    detector = NumericDrift.from_reference(ref, window=ONE_CHECK)
    assert feed(detector, cur) == []
    got = detector.statistics
    assert got["ks"] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=1e-12)
    w1 = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert got["wasserstein"] == pytest.approx(w1, rel=1e-9)
    assert got["ks_p_value"] == pytest.approx(
        stats.ks_2samp(ref, cur, method="asymp").pvalue, rel=0.06
    )
    assert detector.statistic == got["psi"]
    assert KSDrift.from_reference(ref, window=ONE_CHECK).name == "ks"


def test_each_numeric_class_decides_on_its_own_statistic() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(size=1000), rng.normal(0.4, size=200)
    for cls, key in ((NumericDrift, "psi"), (KSDrift, "ks"), (WassersteinDrift, "wasserstein")):
        detector = cls.from_reference(ref, window=ONE_CHECK, persistence=1, threshold=0.01)
        (signal,) = feed(detector, cur)
        assert signal.statistic == detector.statistics[key]
        assert signal.threshold == 0.01
        assert signal.p_value == detector.statistics["ks_p_value"]


def _shift_and_back(persistence: int) -> list[Any]:
    rng = np.random.default_rng(6)
    detector = NumericDrift.from_reference(
        rng.normal(size=2000), persistence=persistence, window=WindowSpec(check_every=100)
    )
    stream = np.concatenate(
        [rng.normal(size=1000), rng.normal(3.0, size=1000), rng.normal(size=2000)]
    )
    return feed(detector, stream)


def test_persistence_delays_firing_and_resolving_by_whole_checks() -> None:
    quick, slow = _shift_and_back(1), _shift_and_back(3)
    assert [s.drifting for s in quick] == [True, False]
    assert [s.drifting for s in slow] == [True, False]
    assert slow[0].index - quick[0].index == 200
    assert slow[1].index - quick[1].index == 200
    fired, resolved = slow
    assert fired.statistic >= fired.threshold == 0.2 and fired.p_value is not None
    assert fired.p_value <= 0.01
    assert resolved.statistic < resolved.threshold or (resolved.p_value or 0) > 0.01


def test_both_the_effect_size_and_the_p_value_must_cross() -> None:
    rng = np.random.default_rng(7)
    ref, stream = rng.normal(size=1000), rng.normal(1.0, size=3000)
    assert feed(NumericDrift.from_reference(ref), stream)
    assert feed(NumericDrift.from_reference(ref, threshold=50.0), stream) == []
    assert feed(NumericDrift.from_reference(ref, alpha=1e-300), stream) == []


def test_a_small_but_significant_shift_does_not_fire_on_psi() -> None:
    rng = np.random.default_rng(8)
    ref, stream = rng.normal(size=100_000), rng.normal(0.15, size=20_000)
    detector = NumericDrift.from_reference(ref, window=WindowSpec(window_size=5000))
    assert feed(detector, stream) == []
    assert detector.statistics["ks_p_value"] < 1e-6
    assert detector.statistics["psi"] < 0.2


def test_reference_is_the_first_observed_values_of_the_stream() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(size=1500)
    values[::10] = np.nan
    detector = NumericDrift()
    feed(detector, values[:1100])
    assert not detector.reference_ready  # 990 observed values: NaN does not count
    feed(detector, values[1100:], start=11_000)
    assert detector.reference_ready


def test_signal_window_describes_both_windows() -> None:
    rng = np.random.default_rng(10)
    stream = np.concatenate([rng.normal(size=3000), rng.normal(2.0, size=1000)])
    (signal,) = feed(NumericDrift(), stream)
    assert signal.window == {
        "reference_size": 1000,
        "reference_start_ts": 0,
        "reference_end_ts": 9990,
        "current_size": 500,
        "current_start_ts": (signal.index - 499) * 10,
        "current_end_ts": signal.index * 10,
    }
    assert signal.ts == signal.index * 10
    given = NumericDrift.from_reference(rng.normal(size=777))
    (signal,) = feed(given, rng.normal(2.0, size=1000))
    assert signal.window is not None
    assert signal.window["reference_size"] == 777
    assert signal.window["reference_start_ts"] is None


def test_time_window_drops_old_values() -> None:
    rng = np.random.default_rng(11)
    spec = WindowSpec(window_size=500, check_every=100, window_ms=2000, min_size=100)
    detector = NumericDrift.from_reference(rng.normal(size=1000), window=spec)
    (signal,) = feed(detector, rng.normal(2.0, size=1000))
    assert signal.window is not None
    assert signal.window["current_size"] == 201  # ts 10 ms apart, within 2000 ms of the newest
    assert signal.window["current_end_ts"] - signal.window["current_start_ts"] == 2000


def test_time_window_skips_checks_until_enough_recent_values() -> None:
    rng = np.random.default_rng(12)
    spec = WindowSpec(window_size=500, check_every=100, window_ms=10_000, min_size=300)
    detector = NumericDrift.from_reference(rng.normal(size=1000), window=spec)
    feed(detector, rng.normal(size=1000))
    before = detector.statistic
    # An hour later: the old values drop out and the next two checks have too few recent values.
    assert feed(detector, rng.normal(3.0, size=200), start=3_600_000) == []
    assert detector.statistic == before
    signals = feed(detector, rng.normal(3.0, size=800), start=3_602_000)
    assert signals and signals[0].drifting
    assert signals[0].window is not None and signals[0].window["current_size"] >= 300


def test_infinity_is_missing_and_ignored() -> None:
    rng = np.random.default_rng(13)
    clean = np.concatenate([rng.normal(size=3000), rng.normal(1.0, size=2000)])
    junk = np.zeros(clean.size + 600, dtype=bool)
    junk[rng.choice(junk.size, size=600, replace=False)] = True
    dirty = np.empty(junk.size)
    dirty[junk] = np.resize([np.inf, -np.inf, np.nan], 600)
    dirty[~junk] = clean
    observed = np.flatnonzero(~junk)
    expected = [(int(observed[s.index]), s.drifting, s.statistic) for s in feed(KSDrift(), clean)]
    got = [(s.index, s.drifting, s.statistic) for s in feed(KSDrift(), dirty)]
    assert got == expected and got


def test_numeric_input_errors() -> None:
    with pytest.raises(ValueError, match="takes numbers"):
        NumericDrift().update_many(np.array(["a", "b"], dtype=object), times(2))
    with pytest.raises(ValueError, match="same length"):
        NumericDrift().update_many(np.zeros(3), times(2))
    NumericDrift().update_many(np.array([1.0, None, 2], dtype=object), times(3))


def test_given_reference_longer_than_reference_size_is_summarised() -> None:
    rng = np.random.default_rng(14)
    ref, cur = rng.normal(size=50_000), rng.normal(0.2, size=500)
    detector = NumericDrift.from_reference(
        ref, window=WindowSpec(window_size=500, check_every=500, min_size=500)
    )
    feed(detector, cur)
    exact = stats.ks_2samp(ref, cur)
    assert detector.statistics["ks"] == pytest.approx(exact.statistic, abs=1.5 / 1000)
    assert detector.statistics["ks_p_value"] == pytest.approx(
        _stats.ks_pvalue(detector.statistics["ks"], 50_000, 500)
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: WindowSpec(window_size=1),
        lambda: WindowSpec(check_every=0),
        lambda: WindowSpec(window_ms=0),
        lambda: WindowSpec(window_size=100, min_size=101),
        lambda: NumericDrift(alpha=0.0),
        lambda: NumericDrift(persistence=0),
        lambda: NumericDrift(threshold=float("nan")),
        lambda: NumericDrift(threshold=-1.0),
        lambda: NumericDrift(reference=np.zeros((3, 3))),
        lambda: NumericDrift(reference=[np.nan, 1.0]),
        lambda: CategoricalDrift(max_categories=0),
    ],
)
def test_bad_configuration_is_a_config_error(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


# -- categorical --------------------------------------------------------------------------------


def test_categorical_distance_matches_scipy_through_the_detector() -> None:
    ref = ["a"] * 500 + ["b"] * 300 + ["c"] * 200
    cur = np.array(["a"] * 40 + ["b"] * 60 + ["c"] * 80 + ["zz"] * 20, dtype=object)
    detector = CategoricalDrift.from_reference(ref, window=ONE_CHECK)
    feed(detector, cur)
    got = detector.statistics
    p, q = np.array([500, 300, 200, 0]), np.array([40, 60, 80, 20])
    assert got["jensen_shannon"] == pytest.approx(jensenshannon(p, q, base=2), rel=1e-12)
    chi2 = stats.chi2_contingency(np.vstack((p, q)), correction=False).pvalue
    assert got["chi2_p_value"] == pytest.approx(chi2, rel=1e-9)
    assert got["unseen_share"] == pytest.approx(0.1)


def test_rare_reference_categories_share_one_bin() -> None:
    ref = ["a"] * 600 + ["b"] * 398 + ["r1", "r2"]
    detector = CategoricalDrift.from_reference(ref, window=ONE_CHECK)
    feed(detector, ["a"] * 120 + ["b"] * 78 + ["r3", "r3"])
    # r1 and r2 (1 in 1000: under 5 per 200-value window) share a bin with the unseen r3.
    expected = jensenshannon([600, 398, 2], [120, 78, 2], base=2)
    assert detector.statistics["jensen_shannon"] == pytest.approx(expected, rel=1e-12)
    assert detector.vocabulary_size == 4


def test_categories_shift_fires_and_missing_is_ignored() -> None:
    rng = np.random.default_rng(15)
    before = rng.choice(np.array([True, False]), p=[0.7, 0.3], size=2000).astype(object)
    after = rng.choice(np.array([True, False]), p=[0.3, 0.7], size=2000).astype(object)
    stream = np.concatenate([before, after])
    with_missing = stream.copy()
    with_missing[::5] = None
    signals = feed(CategoricalDrift(), with_missing)
    assert [s.drifting for s in signals] == [True]
    assert 2000 <= signals[0].index <= 2000 + CategoricalDrift.declared_delay


def test_high_cardinality_stays_bounded() -> None:
    ids = np.array([f"user-{i}" for i in range(200_000)], dtype=object)
    detector = UnseenCategories(max_categories=100)
    signals = feed(detector, ids[:10_000])
    small = len(pickle.dumps(detector))
    signals += feed(detector, ids[10_000:], start=100_000)
    assert detector.vocabulary_size == 100
    assert len(pickle.dumps(detector)) <= small
    # Every id is new: the unseen share is 1 minus the reference's own tail (900 of 1000).
    assert [s.drifting for s in signals] == [True]
    assert signals[0].statistic == pytest.approx(0.1)


def test_unseen_share_discounts_the_reference_tail() -> None:
    ref = np.array([f"id-{i}" for i in range(5000)], dtype=object)
    detector = UnseenCategories.from_reference(ref, max_categories=10)
    new_ids = np.array([f"new-{i}" for i in range(3000)], dtype=object)
    assert feed(detector, new_ids) == []
    assert detector.statistic == pytest.approx(0.002)


def test_unseen_category_fires_on_its_own_threshold() -> None:
    rng = np.random.default_rng(16)
    base = rng.choice(np.array(["x", "y"], dtype=object), size=4000)
    stream = base.copy()
    stream[2000:][rng.random(2000) < 0.08] = "brand-new"
    (signal,) = feed(UnseenCategories(), stream)
    assert signal.drifting and signal.threshold == 0.05 and signal.statistic >= 0.05
    assert feed(UnseenCategories(threshold=0.15), stream) == []
    js = CategoricalDrift()
    feed(js, stream)
    assert js.statistics["unseen_share"] == pytest.approx(0.08, abs=0.03)


# -- missing rate -------------------------------------------------------------------------------


def test_missing_rate_on_numbers_and_categories() -> None:
    rng = np.random.default_rng(17)
    numbers = rng.normal(size=4000)
    numbers[2000:][rng.random(2000) < 0.25] = np.inf
    (signal,) = feed(MissingRate(), numbers)
    assert signal.drifting and signal.statistic >= 0.1
    labels = rng.choice(np.array(["a", "b"], dtype=object), size=4000)
    labels[:2000][rng.random(2000) < 0.3] = None
    (signal,) = feed(MissingRate(), labels)
    assert signal.drifting  # fewer missing values is a change too


def test_missing_rate_statistic_and_p_value() -> None:
    ref = np.array([np.nan] * 40 + [1.0] * 960)
    cur = np.array([np.nan] * 95 + [1.0] * 405)
    window = WindowSpec(window_size=500, check_every=500)
    (signal,) = feed(MissingRate.from_reference(ref, persistence=1, window=window), cur)
    assert signal.statistic == pytest.approx(0.19 - 0.04)
    assert signal.p_value == pytest.approx(_stats.two_proportion_pvalue(40, 1000, 95, 500))
    assert signal.window is not None and signal.window["current_size"] == 500


def test_missing_rate_update_takes_any_value() -> None:
    detector = MissingRate(window=WindowSpec(reference_size=10, window_size=10, check_every=1))
    for i in range(10):
        assert detector.update("a", i) is None
    fired = [detector.update(None, 10 + i) for i in range(10)]
    assert any(s is not None and s.drifting for s in fired)
