"""The benchmark's streams: Elec2, and synthetic streams with a known concept change or none.

Each is a list of rows (features, truth), one per time step, with the step of its event times,
the label delay in rows, and the row of its concept change (None: stationary).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from river.datasets import synth

from driftline.datasets import drifting_stream, elec2_stream

__all__ = ["BenchStream", "elec2", "synthetic"]

Row = tuple[dict[str, Any], Any]


@dataclass
class BenchStream:
    name: str
    rows: list[Row]
    step_ms: int
    delay: int
    change_at: int | None
    previous_label: list[Any] | None = None  # the baseline predictions, when the data has them


def elec2(path: Path, n: int | None, delay: int = 48) -> BenchStream:
    stream = elec2_stream(path, label_delay=delay)
    rows = [
        (dict(p.features), y.label) for p, y in zip(stream.predictions, stream.labels, strict=True)
    ][:n]
    previous = [p.prediction for p in stream.predictions][: len(rows)]
    return BenchStream(f"Elec2 (delay {delay})", rows, 1_800_000, delay, None, previous)


def _river(data: Iterable[tuple[dict[Any, Any], Any]], n: int) -> list[Row]:
    rows: list[Row] = []
    for x, y in data:
        rows.append(({str(k): float(v) for k, v in x.items()}, int(y)))
        if len(rows) == n:
            break
    return rows


def synthetic(n: int, seed: int) -> list[BenchStream]:
    half = n // 2
    out = []
    gauss = drifting_stream(n, seed=seed, shift_at=None, concept_at=half)
    rows = [
        (dict(p.features), y.label) for p, y in zip(gauss.predictions, gauss.labels, strict=True)
    ]
    out.append(BenchStream("Gaussian x0+x2 -> x0-x2", rows, 1000, 50, half))
    # an abrupt switch from one generator to another at ``half`` (River's ConceptDriftStream
    # overflows with a width of 1)
    sea = _river(synth.SEA(variant=0, noise=0.05, seed=seed), half) + _river(
        synth.SEA(variant=3, noise=0.05, seed=seed + 1), n - half
    )
    out.append(BenchStream("SEA 0 -> 3", sea, 1000, 50, half))
    agrawal = _river(synth.Agrawal(classification_function=0, seed=seed), half) + _river(
        synth.Agrawal(classification_function=4, seed=seed + 1), n - half
    )
    out.append(BenchStream("Agrawal 0 -> 4", agrawal, 1000, 50, half))
    still = drifting_stream(n, seed=seed + 7, shift_at=None, concept_at=None)
    rows = [
        (dict(p.features), y.label) for p, y in zip(still.predictions, still.labels, strict=True)
    ]
    out.append(BenchStream("Gaussian stationary", rows, 1000, 50, None))
    out.append(
        BenchStream(
            "SEA stationary",
            _river(synth.SEA(variant=0, noise=0.05, seed=seed + 3), n),
            1000,
            50,
            None,
        )
    )
    return out
