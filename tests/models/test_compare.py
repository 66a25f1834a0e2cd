"""A windowed paired tally counts exactly what a fresh tally of its last events counts."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.models.compare import PairedTally


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_window_keeps_the_scores_of_its_last_events_only(task: str) -> None:
    rng = np.random.default_rng(0)
    if task == "classification":
        rows = [(int(a), int(b), int(y)) for a, b, y in rng.integers(0, 2, (300, 3))]
    else:
        rows = [(float(a), float(b), float(y)) for a, b, y in rng.integers(0, 5, (300, 3))]
    windowed = PairedTally(task, window=100)  # type: ignore[arg-type]
    for row in rows:
        windowed.add(*row)
    fresh = PairedTally(task)  # type: ignore[arg-type]
    for row in rows[-100:]:
        fresh.add(*row)
    assert (windowed.n, windowed.a_wins, windowed.b_wins) == (fresh.n, fresh.a_wins, fresh.b_wins)
    assert windowed.a_score == pytest.approx(fresh.a_score)
    assert windowed.b_score == pytest.approx(fresh.b_score)
    verdict = {"margin": 0.0, "alpha": 0.5, "min_paired": 50}
    assert windowed.verdict(**verdict) == fresh.verdict(**verdict)  # type: ignore[arg-type]
