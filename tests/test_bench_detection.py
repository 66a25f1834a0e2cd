"""The detection benchmark (``bench/detection``) runs end to end; at this size its numbers mean
nothing, so nothing here checks them, and nothing is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_detection_benchmark_runs_on_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "detection.json"
    command = [sys.executable, "-m", "bench.detection", "--size", "tiny", "--jobs", "1"]
    done = subprocess.run(
        [*command, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    header = next(line for line in done.stdout.splitlines() if line.startswith("group"))
    for column in ("drifts", "detected", "mean delay", "p90 delay", "vs ADWIN", "false/100k"):
        assert column in header
    assert "driftline replay" in done.stdout
    assert "naive River loop" in done.stdout
    assert "targets (driftline):" in done.stdout

    results = json.loads(out.read_text())
    rows = {(row["group"], row["method"]): row for row in results["rows"]}
    for group in ("data: all drifts", "data: stationary"):
        for method in ("driftline", "River ADWIN", "alarm every 1000"):
            assert (group, method) in rows
    for group in ("concept: all drifts", "concept: stationary"):
        for method in ("driftline", "River ADWIN", "River DDM", "alarm every 1000"):
            assert (group, method) in rows
    # The blind baseline is scored like the others: with windows longer than its period, it
    # catches every drift, and all its alarms on stationary streams are false.
    for (group, method), row in rows.items():
        if method == "alarm every 1000" and row["drifts"]:
            assert row["detection_rate"] == 1.0
        if method == "alarm every 1000" and group.endswith("stationary"):
            assert row["false_alarms"] == row["alarms"] > 0
    for stream in results["streams"]:
        assert len(stream["delays"]) == len(stream["drifts"])
        assert 0 <= stream["false_alarms"] <= stream["alarms"] == len(stream["positions"])
