"""The README's main job, `driftline demo`, end to end against the real broker."""

from __future__ import annotations

import pytest

from driftline.demo import MALFORMED, run_demo
from driftline.settings import Settings

pytestmark = pytest.mark.kafka


def test_demo_finds_the_shift_and_the_concept_change_and_retrains(kafka_settings: Settings) -> None:
    lines: list[str] = []
    counts = run_demo(kafka_settings, 6000, echo=lines.append)
    text = "\n".join(lines)
    assert counts["dead_letters"] == len(MALFORMED), text
    assert "feature x0 drifted" in text and "feature x1 drifted" in text, text
    assert "error rate rose" in text, text
    # the worker retrains: a first version, then one promoted after the concept change
    assert "demo v1 (initial)" in text and "demo v2 (drift)" in text, text
    assert counts["model_versions"] >= 2, text
    for other in ("x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"):
        assert f"feature {other} drifted" not in text, text
