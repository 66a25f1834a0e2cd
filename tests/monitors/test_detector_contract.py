"""The contract every registered detector passes (``driftline.monitors.base.REGISTRY``).

A detector gets these tests by registering itself at import of its module; the modules below are
imported when they exist (a module that exists but fails to import fails the suite).

Streams, per ``input_kind``, drawn from a seeded ``numpy.random.Generator``; the step change of
the "caught within ``declared_delay``" test happens at event :data:`CHANGE_AT` (before it, and in
the stationary streams of the false-alarm test, the stream is as "before"):

- numeric: N(0, 1) with 5% NaN, then N(1, 1) (mean +1 std) with 25% NaN;
- categorical: "a"/"b"/"c" with p = .5/.3/.2 and 5% None, then "a"/"b"/"c"/"d" with
  p = .2/.3/.4/.1 (one new category) and 25% None;
- binary: 0/1 errors with error rate 0.1, then 0.4;
- continuous: losses ~ Beta(2, 8) (mean 0.2), then Beta(6, 4) (mean 0.6).

The missing share changes with the distribution so that a detector of missing values (which sees
a numeric or categorical stream too) has a step to catch, and a new category appears so that a
detector of unseen categories has one too; distribution detectors ignore missing values.
Constant streams are 1.0, "a", 0 (no errors) and 0.2. Event times are milliseconds, 10 ms apart.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import math
import pickle
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from driftline.monitors.base import REGISTRY, Detector, Signal

MODULES = (
    "driftline.monitors.numeric",
    "driftline.monitors.categorical",
    "driftline.monitors.missing",
    "driftline.monitors.concept",
    "driftline.monitors.performance",
    "driftline.monitors.river",
)
for _module in MODULES:  # importing a detector module registers its detectors
    importlib.import_module(_module)

CHANGE_AT = 5000
T0 = 1_700_000_000_000
KINDS = ("numeric", "categorical", "binary", "continuous")
CATEGORIES = np.array(["a", "b", "c", "d"], dtype=object)
CONSTANT: dict[str, Any] = {"numeric": 1.0, "categorical": "a", "binary": 0.0, "continuous": 0.2}

Factory = Callable[[], Detector]
Stream = tuple[npt.NDArray[Any], npt.NDArray[np.int64]]


def _draw(kind: str, rng: np.random.Generator, n: int, after: bool) -> npt.NDArray[Any]:
    if kind == "numeric":
        values = rng.normal(1.0 if after else 0.0, 1.0, size=n)
        values[rng.random(n) < (0.25 if after else 0.05)] = np.nan
        return values
    if kind == "categorical":
        p = [0.2, 0.3, 0.4, 0.1] if after else [0.5, 0.3, 0.2, 0.0]
        labels = rng.choice(CATEGORIES, p=p, size=n)
        labels[rng.random(n) < (0.25 if after else 0.05)] = None
        return labels
    if kind == "binary":
        return (rng.random(n) < (0.4 if after else 0.1)).astype(np.float64)
    return rng.beta(6, 4, size=n) if after else rng.beta(2, 8, size=n)


@cache
def stream(kind: str, n: int, seed: int, change_at: int | None = None) -> Stream:
    """A read-only stream of ``n`` events, with a step change at ``change_at`` when given."""
    rng = np.random.default_rng(seed)
    cut = n if change_at is None else change_at
    values = np.concatenate([_draw(kind, rng, cut, False), _draw(kind, rng, n - cut, True)])
    ts = T0 + 10 * np.arange(n, dtype=np.int64)
    values.setflags(write=False)
    ts.setflags(write=False)
    return values, ts


def change_stream(kind: str, seed: int = 0, extra: int = 3000) -> Stream:
    return stream(kind, CHANGE_AT + extra, seed, CHANGE_AT)


def shifted(signals: list[Signal], offset: int) -> list[Signal]:
    return [dataclasses.replace(s, index=s.index + offset) for s in signals]


def same_params(a: Any, b: Any) -> bool:
    """Equality that also compares numpy arrays (a reference given as a parameter)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_params(a[k], b[k]) for k in a)
    return bool(a == b)


def assert_json_safe(signal: Signal) -> None:
    assert type(signal.index) is int and signal.index >= 0
    assert type(signal.ts) is int
    assert type(signal.drifting) is bool
    for number in (signal.statistic, signal.threshold):
        assert isinstance(number, float) and math.isfinite(number)
    if signal.p_value is not None:
        assert isinstance(signal.p_value, float) and 0.0 <= signal.p_value <= 1.0
    if signal.window is not None:
        assert_statistics(signal.window)
    json.dumps(dataclasses.asdict(signal), allow_nan=False)


def assert_statistics(window: Mapping[str, Any]) -> None:
    """Scalars (or small mappings/pairs of them), never arrays of raw values."""
    for key, value in window.items():
        assert isinstance(key, str)
        if isinstance(value, Mapping):
            assert_statistics(value)
        elif isinstance(value, list | tuple):
            assert len(value) <= 4, f"window[{key!r}] looks like raw values"
            assert all(v is None or type(v) in (int, float, str, bool) for v in value)
        else:
            assert value is None or type(value) in (int, float, str, bool), (key, type(value))
            assert not (isinstance(value, float) and not math.isfinite(value)), key


@pytest.fixture(params=sorted(REGISTRY))
def factory(request: pytest.FixtureRequest) -> Factory:
    return REGISTRY[request.param]


def test_registry_has_the_data_drift_detectors() -> None:
    expected = {"psi", "ks", "wasserstein", "jensen_shannon", "unseen_categories", "missing_rate"}
    assert expected <= set(REGISTRY)


def test_declares_what_the_suite_needs(factory: Factory) -> None:
    detector = factory()
    assert isinstance(detector, Detector)
    assert isinstance(detector.name, str) and detector.name
    assert detector.input_kind in KINDS
    assert isinstance(detector.declared_delay, int) and detector.declared_delay > 0
    assert detector.false_alarm_budget >= 0
    rebuilt = type(detector)(**detector.params())
    assert repr(rebuilt) == repr(detector)


def test_clone_has_same_params_and_fresh_state(factory: Factory) -> None:
    detector = factory()
    values, ts = change_stream(detector.input_kind)
    detector.update_many(values, ts)
    clone = detector.clone()
    assert type(clone) is type(detector)
    assert same_params(clone.params(), detector.params())
    assert clone.update_many(values, ts) == factory().update_many(values, ts)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_copy_mid_stream_gives_same_future(factory: Factory, how: str) -> None:
    detector = factory()
    values, ts = change_stream(detector.input_kind)
    split = CHANGE_AT - 1234
    detector.update_many(values[:split], ts[:split])
    restored = pickle.loads(pickle.dumps(detector)) if how == "pickle" else copy.deepcopy(detector)
    expected = detector.update_many(values[split:], ts[split:])
    assert expected, "the stream should raise signals after the copy"
    assert restored.update_many(values[split:], ts[split:]) == expected


def test_same_seed_same_signals(factory: Factory) -> None:
    kind = factory().input_kind
    first = factory().update_many(*change_stream(kind, seed=3))
    stream.cache_clear()
    assert factory().update_many(*change_stream(kind, seed=3)) == first


def test_no_signal_on_a_constant_stream(factory: Factory) -> None:
    detector = factory()
    n = 50_000
    values = np.full(n, CONSTANT[detector.input_kind], dtype=object)
    if detector.input_kind != "categorical":
        values = values.astype(np.float64)
    assert detector.update_many(values, T0 + 10 * np.arange(n, dtype=np.int64)) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_change_caught_within_declared_delay(factory: Factory, seed: int) -> None:
    detector = factory()
    delay = detector.declared_delay
    values, ts = change_stream(detector.input_kind, seed=seed, extra=delay + 1)
    signals = detector.update_many(values, ts)
    caught = [s.index for s in signals if s.drifting and s.index >= CHANGE_AT]
    assert caught, f"no drift signal within {delay} events of the change"
    assert caught[0] - CHANGE_AT <= delay
    for signal in signals:
        assert_json_safe(signal)


def test_false_alarms_within_budget(factory: Factory) -> None:
    n, seeds = 50_000, (10, 11, 12, 13)
    alarms = 0
    for seed in seeds:
        detector = factory()
        signals = detector.update_many(*stream(detector.input_kind, n, seed))
        alarms += sum(s.drifting for s in signals)
        for signal in signals:
            assert_json_safe(signal)
    per_100k = alarms * 100_000 / (n * len(seeds))
    assert per_100k <= factory().false_alarm_budget


def _with_non_finite(kind: str) -> Stream:
    values, ts = stream(kind, 20_000, 21)
    values = values.copy()
    rng = np.random.default_rng(22)
    spots = rng.choice(values.size, size=values.size // 20, replace=False)
    if kind == "categorical":
        values[spots] = rng.choice(
            np.array([None, math.nan, math.inf, -math.inf], dtype=object), size=spots.size
        )
    else:
        values[spots] = rng.choice([np.nan, np.inf, -np.inf], size=spots.size)
    return values, ts


def test_nan_and_infinity_are_handled_or_rejected(factory: Factory) -> None:
    detector = factory()
    values, ts = _with_non_finite(detector.input_kind)
    try:
        signals = detector.update_many(values, ts)
    except ValueError:
        # Documented rejection: the detector must still take clean data afterwards.
        clean, clean_ts = stream(detector.input_kind, 5000, 23)
        detector.update_many(clean, clean_ts + 10**9)
        return
    for signal in signals:
        assert_json_safe(signal)
    nothing = np.full(3000, np.nan if detector.input_kind != "categorical" else None)
    detector.update_many(nothing, ts[-1] + 10 * np.arange(1, 3001, dtype=np.int64))
    detector.update(nothing[0], int(ts[-1]) + 40_000)


def test_memory_is_bounded(factory: Factory) -> None:
    detector = factory()
    values, ts = stream(detector.input_kind, 100_000, 31)
    detector.update_many(values[:10_000], ts[:10_000])
    small = len(pickle.dumps(detector))
    detector.update_many(values[10_000:], ts[10_000:])
    assert len(pickle.dumps(detector)) <= 2 * small


def test_batching_does_not_change_the_output(factory: Factory) -> None:
    kind = factory().input_kind
    values, ts = change_stream(kind, seed=5)
    whole = factory().update_many(values, ts)
    assert whole
    detector = factory()
    rng = np.random.default_rng(6)
    pieces: list[Signal] = []
    start = 0
    while start < values.size:
        size = int(rng.choice([1, 2, 7, 64, 100, 333, 1000]))
        stop = min(values.size, start + size)
        if stop - start == 1:
            one = detector.update(values[start], int(ts[start]))
            pieces.extend(shifted([one], start) if one is not None else [])
        else:
            pieces.extend(shifted(detector.update_many(values[start:stop], ts[start:stop]), start))
        start = stop
    assert pieces == whole
