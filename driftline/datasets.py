"""Event streams for the demo, the tests and the benchmarks: synthetic with known drift, and Elec2.

>>> stream = drifting_stream(n=1000, seed=7, shift_at=500, concept_at=800)
>>> len(stream.predictions), len(stream.labels)
(1000, 1000)
>>> stream.predictions[0].model, sorted(stream.predictions[0].features)[:3]
('demo', ['x0', 'x1', 'x2'])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from driftline.events import Label, Prediction

__all__ = ["Stream", "drifting_stream", "elec2_stream"]

T0_MS = 1_764_000_000_000  # 2025-11-24, a fixed origin so that streams are reproducible
STEP_MS = 1000


@dataclass
class Stream:
    """Predictions and labels of one model, in event-time order, with the drift points used."""

    predictions: list[Prediction]
    labels: list[Label]
    changes: dict[str, int] = field(default_factory=dict)


def drifting_stream(
    n: int = 20_000,
    *,
    seed: int = 0,
    n_features: int = 10,
    shift_at: int | None = 8_000,
    shifted: tuple[str, ...] = ("x0", "x1"),
    shift: float = 1.0,
    concept_at: int | None = 14_000,
    label_delay: int = 50,
    model: str = "demo",
) -> Stream:
    """A classifier's stream: ``n`` predictions over ``n_features`` Gaussian features.

    The served model predicts ``x0 + x2 > 0``; the truth is the same rule until ``concept_at``,
    where it becomes ``x0 - x2 > 0`` (a concept change: the error rate rises from ~5% to ~40%).
    At ``shift_at`` the features in ``shifted`` move by ``shift`` standard deviations (data drift).
    Each label arrives ``label_delay`` events after its prediction.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_features))
    if shift_at is not None:
        for name in shifted:
            x[shift_at:, int(name[1:])] += shift
    served = x[:, 0] + x[:, 2] > 0
    truth = served.copy()
    if concept_at is not None:
        truth[concept_at:] = x[concept_at:, 0] - x[concept_at:, 2] > 0
    noise = rng.random(n) < 0.05
    truth ^= noise
    p1 = 1.0 / (1.0 + np.exp(-3.0 * (x[:, 0] + x[:, 2])))
    names = [f"x{j}" for j in range(n_features)]
    predictions = []
    labels = []
    for i in range(n):
        features: dict[str, float | int | str | bool | None] = {
            name: round(float(v), 6) for name, v in zip(names, x[i], strict=True)
        }
        event_id = f"{model}-{i}"
        p = round(float(p1[i]), 6)
        predictions.append(
            Prediction(
                event_id=event_id,
                model=model,
                model_version=1,
                ts=T0_MS + i * STEP_MS,
                features=features,
                prediction=int(served[i]),
                scores={"0": round(1.0 - p, 6), "1": p},
                tags={"region": "eu" if i % 2 else "us"},
            )
        )
        labels.append(
            Label(
                event_id=event_id,
                model=model,
                label=int(truth[i]),
                ts=T0_MS + (i + label_delay) * STEP_MS,
            )
        )
    changes = {}
    if shift_at is not None:
        changes["data_drift"] = shift_at
    if concept_at is not None:
        changes["concept_drift"] = concept_at
    return Stream(predictions, labels, changes)


def elec2_stream(path: str | Path, *, model: str = "elec2", label_delay: int = 48) -> Stream:
    """The Elec2 CSV as events: features are its columns, the prediction is the previous label.

    The "previous label" predictor is the classic Elec2 baseline (about 85% accuracy); its labels
    arrive ``label_delay`` half-hours (a day by default) after each prediction.
    """
    predictions = []
    labels = []
    previous = 0
    with Path(path).open(newline="") as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            truth = int(float(row.pop("class")))
            features: dict[str, float | int | str | bool | None] = {
                k: float(v) for k, v in row.items()
            }
            event_id = f"{model}-{i}"
            ts = T0_MS + i * 1_800_000
            predictions.append(
                Prediction(
                    event_id=event_id, model=model, ts=ts, features=features, prediction=previous
                )
            )
            labels.append(
                Label(event_id=event_id, model=model, label=truth, ts=ts + label_delay * 1_800_000)
            )
            previous = truth
    return Stream(predictions, labels)
