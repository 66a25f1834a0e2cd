"""Performance metrics against River's metrics and hand-computed numpy, windows per version, and
the accuracy-drop detector."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from river import metrics as river_metrics
from scipy import stats

from driftline.errors import ConfigError
from driftline.events import Target
from driftline.monitors.performance import (
    AccuracyDrop,
    ModelPerformance,
    PerformanceWindow,
    accuracy,
    class_key,
    f1_score,
    log_loss,
    mae,
    rmse,
)
from driftline.monitors.windows import WindowSpec

metrics: Any = river_metrics  # River's constructors are untyped
CLASSES = ["cat", "dog", "eel"]


def classified(seed: int, n: int) -> tuple[list[str], list[str], list[dict[str, float]]]:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n).tolist()
    raw = rng.dirichlet(np.ones(3), size=n)
    scores = [dict(zip(CLASSES, map(float, row), strict=True)) for row in raw]
    predicted = [max(s, key=s.__getitem__) for s in scores]
    return y, predicted, scores


def river_value(metric: Any, y: list[Any], p: list[Any]) -> float:
    for a, b in zip(y, p, strict=True):
        metric.update(a, b)
    return float(metric.get())


# -- metric functions against River ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_river(seed: int) -> None:
    y, p, scores = classified(seed, 400)
    assert accuracy(y, p) == pytest.approx(river_value(metrics.Accuracy(), y, p))
    assert f1_score(y, p) == pytest.approx(river_value(metrics.MacroF1(), y, p))
    # River's F1(pos_val="dog") returns 0 here (0.26.1: it maps labels to booleans, then
    # looks "dog" up among them), so it gets the labels as booleans.
    is_dog = [v == "dog" for v in y], [v == "dog" for v in p]
    assert f1_score(y, p, positive="dog") == pytest.approx(river_value(metrics.F1(), *is_dog))
    assert log_loss(y, scores) == pytest.approx(river_value(metrics.CrossEntropy(), y, scores))


@pytest.mark.parametrize("seed", range(5))
def test_regression_metrics_match_river(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, p = rng.normal(size=300), rng.normal(size=300)
    assert mae(y, p) == pytest.approx(river_value(metrics.MAE(), y.tolist(), p.tolist()))
    assert rmse(y, p) == pytest.approx(river_value(metrics.RMSE(), y.tolist(), p.tolist()))


def test_log_loss_by_hand_clips_and_skips_events_without_scores() -> None:
    y = [1, 0, 1, 0]
    scores: list[dict[str, float] | None] = [{"1": 0.9}, {"0": 0.0, "1": 1.0}, None, {"0": 0.5}]
    expected = -(math.log(0.9) + math.log(1e-15) + math.log(0.5)) / 3
    assert log_loss(y, scores) == pytest.approx(expected)
    assert math.isnan(log_loss([1], [None]))


def test_class_keys_make_labels_and_scores_agree() -> None:
    labels: list[Target] = [1, 0.0, True, "x"]
    assert accuracy(labels, ["1", 0, "true", "x"]) == 1.0
    assert class_key(False) == "false" and class_key(2.5) == "2.5"
    assert log_loss([True], [{"true": 0.5, "false": 0.5}]) == pytest.approx(math.log(2))


def test_binary_f1_of_an_absent_class_is_zero() -> None:
    assert f1_score([0, 0], [0, 0], positive=1) == 0.0


# -- windows --------------------------------------------------------------------------------------


def feed(window: PerformanceWindow, seed: int, *columns: list[Any]) -> None:
    """Feed in random batch sizes."""
    rng = np.random.default_rng(seed)
    start, n = 0, len(columns[0])
    while start < n:
        stop = min(n, start + int(rng.integers(1, 60)))
        window.update(*(c[start:stop] for c in columns))
        start = stop


@pytest.mark.parametrize("positive", [None, "eel"])
def test_classification_window_and_cumulative_metrics(positive: str | None) -> None:
    y, p, scores = classified(11, 700)
    window = PerformanceWindow("classification", window_size=250, positive=positive)
    feed(window, 1, y, p, scores)
    got = window.metrics()
    for part, (ys, ps, ss) in {
        "window": (y[-250:], p[-250:], scores[-250:]),
        "cumulative": (y, p, scores),
    }.items():
        assert got[part]["events"] == len(ys)
        assert got[part]["accuracy"] == pytest.approx(accuracy(ys, ps))
        assert got[part]["f1"] == pytest.approx(f1_score(ys, ps, positive=positive))
        assert got[part]["log_loss"] == pytest.approx(log_loss(ys, ss))


def test_regression_window_and_cumulative_metrics() -> None:
    rng = np.random.default_rng(12)
    y, p = rng.normal(size=500).tolist(), rng.normal(size=500).tolist()
    window = PerformanceWindow("regression", window_size=100)
    feed(window, 2, y, p)
    got = window.metrics()
    assert got["window"]["mae"] == pytest.approx(np.mean(np.abs(np.subtract(y, p)[-100:])))
    assert got["window"]["rmse"] == pytest.approx(np.sqrt(np.mean(np.subtract(y, p)[-100:] ** 2)))
    assert got["cumulative"]["mae"] == pytest.approx(mae(y, p))
    assert got["cumulative"]["rmse"] == pytest.approx(rmse(y, p))


def test_an_empty_window_reports_nan_and_no_scores_no_log_loss() -> None:
    window = PerformanceWindow("classification")
    assert math.isnan(window.metrics()["window"]["accuracy"])
    window.update(["a"], ["a"])
    assert window.metrics()["window"]["accuracy"] == 1.0
    assert math.isnan(window.metrics()["cumulative"]["log_loss"])


def test_window_pickles_mid_stream() -> None:
    y, p, scores = classified(13, 300)
    window = PerformanceWindow("classification", window_size=100)
    window.update(y[:150], p[:150], scores[:150])
    restored = pickle.loads(pickle.dumps(window))
    for w in (window, restored):
        w.update(y[150:], p[150:], scores[150:])
    assert restored.metrics() == window.metrics()


def test_model_performance_keeps_the_latest_versions_apart() -> None:
    perf = ModelPerformance("classification", window_size=50, max_versions=2)
    perf.update("1", ["a"] * 10, ["a"] * 10)
    perf.update("2", ["a"] * 10, ["b"] * 10)
    perf.update("1", ["a"], ["a"])  # 1 is now the most recently updated
    perf.update(3, ["a"] * 4, ["a", "b", "a", "b"])
    assert perf.versions() == ["1", 3]
    assert perf.metrics("2") is None
    one = perf.metrics("1") or {}
    assert one["cumulative"]["events"] == 11.0 and one["window"]["accuracy"] == 1.0
    assert math.isnan(one["window"]["log_loss"])
    assert (perf.metrics(3) or {})["window"]["accuracy"] == 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda: PerformanceWindow("ranking"),  # type: ignore[arg-type]
        lambda: PerformanceWindow("regression", window_size=0),
        lambda: ModelPerformance("regression", max_versions=0),
    ],
)
def test_bad_parameters_raise_config_error(make: Any) -> None:
    with pytest.raises(ConfigError):
        make()


# -- the accuracy-drop detector -------------------------------------------------------------------


def errors(seed: int, rates: list[tuple[float, int]]) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(n) < p for p, n in rates]).astype(np.float64)


def signals(detector: AccuracyDrop, values: npt.NDArray[np.float64]) -> list[Any]:
    return list(detector.update_many(values, 1000 + 10 * np.arange(values.size, dtype=np.int64)))


def test_accuracy_drop_fires_then_resolves_when_accuracy_recovers() -> None:
    found = signals(AccuracyDrop(), errors(1, [(0.1, 3000), (0.25, 2000), (0.1, 2000)]))
    assert [(s.drifting, s.index // 100) for s in found] == [(True, 33), (False, 54)]
    fired = found[0]
    assert fired.statistic >= fired.threshold == 0.05 and (fired.p_value or 1) <= 0.0001


def test_accuracy_drop_statistic_and_p_value_by_hand() -> None:
    values = errors(2, [(0.1, 1000), (0.3, 2000)])
    [fired, *_] = signals(AccuracyDrop(persistence=1), values)
    window = values[max(1000, fired.index - 499) : fired.index + 1]  # after the reference
    e0, e1, n1 = values[:1000].sum(), window.sum(), window.size
    assert fired.statistic == pytest.approx(e1 / n1 - e0 / 1000)
    pooled = (e0 + e1) / (1000 + n1)
    z = fired.statistic / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / n1))
    assert fired.p_value == pytest.approx(stats.norm.sf(z))


def test_accuracy_rise_is_not_a_drop() -> None:
    assert signals(AccuracyDrop(), errors(3, [(0.3, 3000), (0.05, 3000)])) == []


def test_accuracy_drop_needs_significance_at_high_error_rates() -> None:
    """0.5 -> 0.56: over the threshold (0.05) but within noise for 500 events."""
    small = AccuracyDrop(window=WindowSpec(reference_size=1000, window_size=500))
    assert signals(small, errors(4, [(0.5, 2000), (0.56, 400)])) == []
