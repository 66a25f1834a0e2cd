"""Golden regression tests: pinned detection positions of the data-drift detectors.

Each scenario is a seeded stream; :data:`EXPECTED` holds the ``(index, drifting)`` pairs the
detectors emitted on it when they were written. These change only on purpose: a change to a
threshold, a window or a statistic that moves them must update this table in the same commit and
say why. Behaviour tests live in ``test_data_drift.py``, the generic contract in
``test_detector_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from driftline.monitors.base import Detector
from driftline.monitors.categorical import CategoricalDrift, UnseenCategories
from driftline.monitors.missing import MissingRate
from driftline.monitors.numeric import KSDrift, NumericDrift, WassersteinDrift
from driftline.monitors.windows import WindowSpec

Stream = tuple[npt.NDArray[Any], npt.NDArray[np.int64]]


def numeric_there_and_back() -> Stream:
    """N(0, 1), then N(0.7, 1.3), then N(0, 1) again; 3000 events each, 2% NaN."""
    rng = np.random.default_rng(2024)
    values = np.concatenate(
        [rng.normal(size=3000), rng.normal(0.7, 1.3, size=3000), rng.normal(size=3000)]
    )
    values[rng.random(values.size) < 0.02] = np.nan
    return values, 1000 * np.arange(values.size, dtype=np.int64)


def numeric_bursty_time() -> Stream:
    """Events in bursts (gaps of minutes), a slow drift of the mean from 0 to 1.5."""
    rng = np.random.default_rng(7)
    n = 8000
    gaps = np.where(rng.random(n) < 0.01, 300_000, rng.integers(1, 200, n))
    values = rng.normal(np.linspace(0.0, 1.5, n), 1.0)
    return values, np.cumsum(gaps).astype(np.int64)


def categorical_shift_and_novelty() -> Stream:
    """Shares move from .6/.3/.1 to .4/.3/.3 at 3000, then 10% of a new "d" from 6000."""
    rng = np.random.default_rng(11)
    labels = np.array(["a", "b", "c", "d"], dtype=object)
    values = np.concatenate(
        [
            rng.choice(labels, p=[0.6, 0.3, 0.1, 0.0], size=3000),
            rng.choice(labels, p=[0.4, 0.3, 0.3, 0.0], size=3000),
            rng.choice(labels, p=[0.36, 0.27, 0.27, 0.1], size=3000),
        ]
    )
    values[rng.random(values.size) < 0.03] = None
    return values, 1000 * np.arange(values.size, dtype=np.int64)


def missing_outage() -> Stream:
    """A feature whose feed sends 30% NaN or infinity between events 4000 and 6000."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=9000)
    outage = np.zeros(values.size, dtype=bool)
    outage[4000:6000] = rng.random(2000) < 0.3
    values[outage] = rng.choice([np.nan, np.inf], size=int(outage.sum()))
    return values, 1000 * np.arange(values.size, dtype=np.int64)


TIMED = WindowSpec(window_size=500, check_every=100, window_ms=60_000, min_size=100)

SCENARIOS: dict[str, tuple[Callable[[], Detector], Callable[[], Stream]]] = {
    "psi/there_and_back": (NumericDrift, numeric_there_and_back),
    "ks/there_and_back": (KSDrift, numeric_there_and_back),
    "wasserstein/there_and_back": (WassersteinDrift, numeric_there_and_back),
    "psi/bursty_time": (lambda: NumericDrift(window=TIMED), numeric_bursty_time),
    "ks/bursty_time": (lambda: KSDrift(window=TIMED), numeric_bursty_time),
    "jensen_shannon/shift_and_novelty": (CategoricalDrift, categorical_shift_and_novelty),
    "unseen_categories/shift_and_novelty": (UnseenCategories, categorical_shift_and_novelty),
    "missing_rate/outage": (MissingRate, missing_outage),
    "missing_rate/steady_categorical": (MissingRate, categorical_shift_and_novelty),
}

EXPECTED: dict[str, list[tuple[int, bool]]] = {
    "jensen_shannon/shift_and_novelty": [(3871, True)],
    "ks/bursty_time": [(2399, True)],
    "ks/there_and_back": [(3815, True), (6872, False)],
    "missing_rate/outage": [(4749, True), (6999, False)],
    "missing_rate/steady_categorical": [],
    "psi/bursty_time": [(3699, True)],
    "psi/there_and_back": [(4070, True), (6872, False)],
    "unseen_categories/shift_and_novelty": [(6958, True)],
    "wasserstein/there_and_back": [(3815, True), (7124, False)],
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_detection_positions_are_pinned(scenario: str) -> None:
    make, data = SCENARIOS[scenario]
    signals = make().update_many(*data())
    assert [(s.index, s.drifting) for s in signals] == EXPECTED[scenario]
