"""The mean-shift scan (:mod:`driftline.monitors.shift_scan`) and how a numeric test uses it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from driftline.errors import ConfigError
from driftline.events import Prediction
from driftline.monitors.model_monitor import ModelMonitor
from driftline.monitors.numeric import WassersteinDrift
from driftline.monitors.shift_scan import ScanState, ShiftScan
from driftline.monitors.spec import MonitorSpec


def _stream(shift: float, n: int = 6000, at: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=n)
    values[at:] += shift
    return values


def _ts(n: int) -> np.ndarray:
    return 1000 * np.arange(n, dtype=np.int64)


def test_a_clear_shift_fires_at_once_and_the_window_test_resolves() -> None:
    values = np.concatenate([_stream(1.0, 6000, 4000), np.random.default_rng(1).normal(size=3000)])
    plain = WassersteinDrift().update_many(values, _ts(values.size))
    scanned = WassersteinDrift(scan=ShiftScan()).update_many(values, _ts(values.size))
    assert plain[0].drifting and plain[0].index - 4000 > 250
    first = scanned[0]
    assert first.drifting and 0 <= first.index - 4000 < 64
    assert first.window is not None and first.window["test"] == "mean_shift"
    assert first.statistic >= first.threshold == ShiftScan().effect
    assert first.p_value is not None and first.p_value < 1e-5
    # The alert resolves once the stream is back, as the window test decides.
    assert [s.drifting for s in scanned] == [True, False]
    assert scanned[1].index > 6000


def test_no_scan_signal_on_a_stationary_stream() -> None:
    values = _stream(0.0, 50_000)
    assert WassersteinDrift(scan=ShiftScan()).update_many(values, _ts(values.size)) == []


def test_batches_give_the_same_signals() -> None:
    values = _stream(0.5, 9000, 6000, seed=4)
    whole = WassersteinDrift(scan=ShiftScan()).update_many(values, _ts(values.size))
    detector = WassersteinDrift(scan=ShiftScan())
    pieces = []
    for start in range(0, values.size, 777):
        stop = min(values.size, start + 777)
        for s in detector.update_many(values[start:stop], _ts(values.size)[start:stop]):
            pieces.append((s.index + start, s.drifting, s.statistic))
    assert pieces == [(s.index, s.drifting, s.statistic) for s in whole]
    assert whole and whole[0].window is not None and whole[0].window["test"] == "mean_shift"


def test_the_reference_grows_to_its_cap_unless_given() -> None:
    spec = ShiftScan(longest=64, reference_cap=1500)
    rng = np.random.default_rng(2)
    state = ScanState(spec)
    state.start(rng.normal(size=1000), grows=True)
    state.scan(rng.normal(size=300), _ts(300))
    assert state.reference_size == 1000 + 300 - 64
    state.scan(rng.normal(size=1000), _ts(1000))
    assert state.reference_size == 1500
    fixed = ScanState(spec)
    fixed.start(rng.normal(size=1000), grows=False)
    fixed.scan(rng.normal(size=3000), _ts(3000))
    assert fixed.reference_size == 1000


def test_the_reference_stops_growing_at_the_first_over_scan() -> None:
    rng = np.random.default_rng(8)
    state = ScanState(ShiftScan(longest=64))
    state.start(rng.normal(size=1000), grows=True)
    state.scan(rng.normal(size=500), _ts(500))
    result = state.scan(rng.normal(2.0, size=500), _ts(500))
    assert result.over.any()
    frozen = state.reference_size
    assert frozen < 1000 + 1000 - 64
    state.scan(rng.normal(size=3000), _ts(3000))
    assert state.reference_size == frozen


def _over_scans(state: ScanState, values: np.ndarray, sizes: list[int]) -> list[object]:
    """Every scan's place, whether it was over and its strongest window, then the reference."""
    ts, at, out = _ts(values.size), 0, []
    for size in sizes:
        result = state.scan(values[at : at + size], ts[at : at + size])
        for row, over in enumerate(result.over.tolist()):
            out.append((at + int(result.positions[row]), over and result.strongest(row)))
        at += size
    return [*out, state.reference_size]


def _sizes(n: int, seed: int, most: int) -> list[int]:
    """Random batch sizes (some 0) adding up to ``n``."""
    sizes = np.random.default_rng(seed).integers(0, most, n)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n))].tolist()
    return [*sizes, n - sum(sizes)]


@pytest.mark.parametrize(
    ("case", "grows"), [("early", True), ("late", True), ("late", False), ("constant", True)]
)
def test_any_batch_split_gives_the_same_scans(case: str, grows: bool) -> None:
    rng = np.random.default_rng(11)
    reference = np.full(500, 2.0) if case == "constant" else rng.normal(size=500)
    values = np.full(5000, 2.0) if case == "constant" else rng.normal(size=5000)
    values[{"early": 700, "late": 4000, "constant": 3000}[case] :] += 0.6
    runs = []
    for sizes in ([5000], [1] * 5000, _sizes(5000, 1, 40), _sizes(5000, 2, 3000)):
        state = ScanState(ShiftScan(longest=512, reference_cap=1500).for_tests(5))
        state.start(reference, grows)
        runs.append(_over_scans(state, values, sizes))
    assert any(over for _, over in runs[0][:-1])
    assert all(run == runs[0] for run in runs[1:])


def test_a_window_at_the_threshold_is_over_just_as_computed() -> None:
    """The scan decides with the division the module documents, however close to the threshold
    (scans may skip windows that cannot be over: this checks that none is skipped wrongly)."""
    spec = ShiftScan(z=4.0, effect=0.0, every=32, shortest=32, longest=32, step=32)
    terms = np.sqrt(1 / 32 + 1 / 1000)  # one window of 32 against a reference of 1000 values
    units = int(4.0 * terms * 2**24)  # the shift, in 2**-24 std, then the least that is over
    while units / 2**24 / terms < 4.0:
        units += 1
    for shift, over in ((units, True), (units - 1, False)):
        state = ScanState(spec)
        state.start(np.tile([-1.0, 1.0], 500), grows=False)  # mean 0, std 1: exact sums
        result = state.scan(np.full(32, shift / 2**24), _ts(32))
        assert result.over.tolist() == [over]


def test_a_state_pickled_with_its_held_values_restores() -> None:
    """States pickled before the held values were kept as prefix sums still load."""
    values = _stream(1.0, 6000, 3000, seed=5)
    state = ScanState(ShiftScan())
    state.start(values[:1000], grows=True)
    state.scan(values[1000:2500], _ts(1500))
    old = state.__getstate__()
    old["_values"] = np.diff(old.pop("_prefix"))
    restored = ScanState.__new__(ScanState)
    restored.__setstate__(old)
    rest = values[2500:]
    assert _over_scans(restored, rest, [rest.size]) == _over_scans(state, rest, [rest.size])


def test_scan_state_pickles_mid_stream() -> None:
    values = _stream(0.7, 8000, 5000, seed=9)
    detector = WassersteinDrift(scan=ShiftScan())
    detector.update_many(values[:4500], _ts(8000)[:4500])
    restored = pickle.loads(pickle.dumps(detector))
    rest, ts = values[4500:], _ts(8000)[4500:]
    assert restored.update_many(rest, ts) == detector.update_many(rest, ts)


def test_for_tests_raises_the_threshold_for_a_family() -> None:
    scan = ShiftScan(z=4.4)
    assert scan.for_tests(1).z == pytest.approx(4.4)
    assert scan.for_tests(11).z == pytest.approx(np.sqrt(4.4**2 + 2 * np.log(11)))


@pytest.mark.parametrize(
    "bad", [{"z": 0.0}, {"effect": -1.0}, {"every": 0}, {"longest": 16}, {"reference_cap": 1}]
)
def test_bad_settings_are_rejected(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ShiftScan(**bad)  # type: ignore[arg-type]


def test_spec_round_trip_and_off_switch() -> None:
    spec = MonitorSpec.from_dict({"shift_scan": {"z": 5.0}})
    assert spec.shift_scan == ShiftScan(z=5.0)
    assert MonitorSpec.from_dict(spec.to_dict()) == spec
    off = MonitorSpec.from_dict({"shift_scan": None})
    assert off.shift_scan is None and MonitorSpec.from_dict(off.to_dict()) == off


def _predictions(values: np.ndarray) -> list[Prediction]:
    return [
        Prediction(str(i), "m", {"x": float(v)}, 0, ts=1_000_000 + 1000 * i)
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize("scan", [True, False])
def test_model_monitor_alert_names_the_test(scan: bool) -> None:
    spec = MonitorSpec() if scan else MonitorSpec(shift_scan=None)
    monitor = ModelMonitor("m", spec)
    events = _predictions(_stream(1.5, 6000, 4000, seed=3))
    alerts = [
        a for s in range(0, 6000, 1000) for a in monitor.observe_predictions(events[s : s + 1000])
    ]
    firing = [a for a in alerts if a.kind == "data_drift" and a.status == "firing"]
    assert firing
    delay = (firing[0].event_ts - events[4000].ts) // 1000
    if scan:
        assert delay < 64 and "mean_shift" in firing[0].message
    else:
        assert delay > 250 and "wasserstein" in firing[0].message


@pytest.mark.parametrize("scan", [True, False])
def test_only_scanned_tests_are_checked_less_often(scan: bool) -> None:
    spec = MonitorSpec() if scan else MonitorSpec(shift_scan=None)
    monitor = ModelMonitor("m", spec)
    events = [
        Prediction(str(i), "m", {"x": float(i % 7), "c": "ab"[i % 2]}, 0, ts=i) for i in range(50)
    ]
    monitor.observe_predictions(events)
    every = {
        (name, type(d).__name__): d.window.check_every
        for name, watch in monitor._inputs[()].items()
        for d in watch.detectors
    }
    numeric = spec.scanned_check_every if scan else spec.window.check_every
    assert every[("f:x", "WassersteinDrift")] == numeric
    assert every[("f:x", "MissingRate")] == every[("f:c", "CategoricalDrift")] == 100
    assert spec.window.check_every == 100
    assert spec.scanned_check_every == 250
