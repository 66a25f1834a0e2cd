"""Throughput: ``driftline replay`` against a naive per-event River loop, on the same files.

The files are :func:`driftline.datasets.drifting_stream` written as JSON Lines by the codec:
predictions with 10 numeric features, two class scores and a tag, and their labels (50 events
behind). One **event** is one prediction with its label (two records). Both sides read the
files from disk in one process:

- **driftline**: :func:`driftline.streams.replay.replay` in-process (what ``driftline replay``
  runs): decode and validate each line, order by event time, join labels, every monitor of the
  default spec, alerts written to ``/dev/null``;
- **naive loop**: per event, ``orjson.loads`` of both lines, 10 River ``ADWIN`` updates (one per
  feature), a River logistic regression's ``predict_one`` then ``learn_one``, and a ``DDM``
  update with the 0/1 error. No validation, no ordering: labels are matched by event id.

Each side runs ``repeat`` times, the two alternating; the fastest run of each counts.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from river import drift as river_drift
from river import linear_model

from driftline.codec import encode
from driftline.datasets import drifting_stream
from driftline.streams.replay import replay

__all__ = ["measure", "naive_loop"]

#: River's detectors (untyped constructors).
drift: Any = river_drift


def naive_loop(predictions: Path, labels: Path) -> int:
    """The per-event River loop; returns the number of events processed."""
    adwins: dict[str, Any] = {}
    ddm = drift.binary.DDM()
    model = linear_model.LogisticRegression()
    waiting: dict[str, tuple[dict[str, Any], Any]] = {}
    events = 0
    with predictions.open("rb") as p_file, labels.open("rb") as l_file:
        for p_line, l_line in zip(p_file, l_file, strict=True):
            p = orjson.loads(p_line)
            features = p["features"]
            for name, value in features.items():
                detector = adwins.get(name)
                if detector is None:
                    detector = adwins[name] = drift.ADWIN()
                detector.update(value)
            waiting[p["event_id"]] = (features, model.predict_one(features))
            y = orjson.loads(l_line)
            x, guess = waiting.pop(y["event_id"])
            ddm.update(guess != y["label"])
            model.learn_one(x, y["label"])
            events += 1
    return events


def _fastest(run: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def measure(events: int, repeat: int, seed: int = 3) -> dict[str, Any]:
    """Events per second of both sides and their ratio."""
    stream = drifting_stream(events, seed=seed)
    with tempfile.TemporaryDirectory(prefix="driftline-bench-") as tmp:
        p_path, l_path = Path(tmp) / "predictions.jsonl", Path(tmp) / "labels.jsonl"
        p_path.write_bytes(b"".join(encode(p) + b"\n" for p in stream.predictions))
        l_path.write_bytes(b"".join(encode(y) + b"\n" for y in stream.labels))
        # Labels are 50 events behind their predictions in event time, but in the same order
        # in the file, which is what lets the naive loop match them line by line.
        counts: dict[str, int] = {}

        def run_replay() -> None:
            with open(os.devnull, "wb") as sink:
                counts.update(replay(p_path, l_path, sink).counts)

        # alternated, so that a slow spell of a shared machine falls on both sides alike
        replay_s = naive_s = float("inf")
        for _ in range(repeat):
            replay_s = min(replay_s, _fastest(run_replay, 1))
            naive_s = min(naive_s, _fastest(lambda: naive_loop(p_path, l_path), 1))
        size = p_path.stat().st_size + l_path.stat().st_size
    return {
        "events": events,
        "bytes": size,
        "repeat": repeat,
        "replay_seconds": replay_s,
        "replay_events_per_s": events / replay_s,
        "replay_counts": counts,
        "naive_seconds": naive_s,
        "naive_events_per_s": events / naive_s,
        "ratio": naive_s / replay_s,
    }
