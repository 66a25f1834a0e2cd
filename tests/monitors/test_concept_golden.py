"""Golden positions: where each concept and performance detector fires on seeded streams.

These pin today's behaviour so that a change to a detector (or to River under it) shows up as a
diff here. Change the numbers only on purpose, and say why in the commit.

Error stream (0/1): error rate 0.1 for 4000 events, then 0.35 (3000), 0.2 (3000), 0.5 (3000),
0.05 (3000): increases at 4000 and 10000, decreases at 7000 and 13000 (never signalled).
Loss stream: Gamma(2, 0.1) for 4000, Gamma(2, 0.3) for 3000, Gamma(2, 0.1) for 3000, Gamma(3, 0.3)
for 3000: increases at 4000 and 10000.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import driftline.monitors.concept
import driftline.monitors.performance  # registers accuracy_drop
from driftline.monitors.base import REGISTRY

GOLDEN: dict[str, dict[int, list[Any]]] = {
    "error_rate": {0: [4042, 10124], 1: [4049, 10239]},
    "adwin": {0: [4095, 10079], 1: [4159, 10079]},
    "ddm": {0: [2056, 4080, 10244], 1: [39, 4138, 10315]},
    "hddm_a": {0: [4041, 10063], 1: [4163, 10126]},
    "hddm_w": {0: [4043, 5511, 10045, 12867], 1: [4164, 5446, 6300, 10010, 10607, 11325, 11873]},
    "fhddm": {0: [4073, 10063], 1: [4172, 9973]},
    "accuracy_drop": {0: [(4299, True), (13699, False)], 1: [(4399, True), (13599, False)]},
    "loss_increase": {0: [4027, 10037], 1: [4019, 10101]},
    "page_hinkley": {0: [4119, 10091], 1: [4114, 10101]},
}
#: The own detector's statistic (estimated error-rate increase), to 4 decimals.
ERROR_RATE_STATISTICS = {0: [0.2671, 0.2808], 1: [0.3611, 0.1855]}


def error_stream(seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    rates = [(0.1, 4000), (0.35, 3000), (0.2, 3000), (0.5, 3000), (0.05, 3000)]
    return np.concatenate([rng.random(n) < p for p, n in rates]).astype(np.float64)


def loss_stream(seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    parts = [(2, 0.1, 4000), (2, 0.3, 3000), (2, 0.1, 3000), (3, 0.3, 3000)]
    return np.concatenate([rng.gamma(k, theta, n) for k, theta, n in parts])


def test_the_golden_detectors_are_registered() -> None:
    assert driftline.monitors.concept.__name__ and set(GOLDEN) <= set(REGISTRY)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_detection_positions(name: str, seed: int) -> None:
    detector = REGISTRY[name]()
    values = error_stream(seed) if detector.input_kind == "binary" else loss_stream(seed)
    signals = detector.update_many(values, 10 * np.arange(values.size, dtype=np.int64))
    if name == "accuracy_drop":
        assert [(s.index, s.drifting) for s in signals] == GOLDEN[name][seed]
    else:
        assert [s.index for s in signals] == GOLDEN[name][seed]
    if name == "error_rate":
        assert [round(s.statistic, 4) for s in signals] == ERROR_RATE_STATISTICS[seed]
