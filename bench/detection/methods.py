"""The methods compared, each turning a stream into the positions of its alarms.

- **driftline**: the product's :class:`~driftline.monitors.model_monitor.ModelMonitor` with the
  default :class:`~driftline.monitors.spec.MonitorSpec`, fed events in batches of 1000, one event
  per second of event time (so the alert policy's defaults apply: 1 h cooldown, change-point
  alerts resolved after 6 h). An alarm is a ``firing`` alert of kind ``data_drift`` (any
  feature) for data drift, ``concept_drift`` (the default ``error_rate`` detector) for concept
  drift.
- **River ADWIN / DDM**: River's bare detectors with default settings, fed one value at a time;
  an alarm is an event where ``drift_detected`` is true. ``ADWIN()`` runs on each feature (an
  alarm on any feature counts) or on the 0/1 errors; ``binary.DDM()`` on the errors.
- **every k**: an alarm every ``k`` events from a random offset: what blind alarming gives.

Alarms are positions (event indices); several alarms at one event count once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from river import drift as river_drift

from driftline.events import Alert, Label, Prediction
from driftline.monitors.model_monitor import ModelMonitor

__all__ = [
    "BATCH",
    "STEP_MS",
    "T0_MS",
    "alarm_positions",
    "driftline_concept",
    "driftline_data",
    "every_k",
    "river_adwin_columns",
    "river_on_errors",
]

T0_MS = 1_764_000_000_000
#: Event time between two events: one second.
STEP_MS = 1000
BATCH = 1000
MODEL = "bench"
#: River's detectors (untyped constructors).
drift: Any = river_drift


def alarm_positions(
    alerts: Iterable[Alert], kind: str, t0_ms: int = T0_MS, step_ms: int = STEP_MS
) -> list[int]:
    """The event positions of the ``firing`` alerts of one kind, sorted, each once."""
    return sorted(
        {
            int(a.event_ts - t0_ms) // step_ms
            for a in alerts
            if a.status == "firing" and a.kind == kind
        }
    )


def _served(x: npt.NDArray[np.float64]) -> list[int]:
    """What the monitored model predicts: a fixed rule on two features, cut at the median of
    the first 1000 events (so that both classes are predicted)."""
    score = x[:, 0] + x[:, 2]
    cut = float(np.median(score[:1000]))
    served: list[int] = (score > cut).astype(int).tolist()
    return served


def driftline_data(x: npt.NDArray[np.float64]) -> list[int]:
    """``data_drift`` alarms of a ModelMonitor over predictions carrying the features ``x``."""
    monitor = ModelMonitor(MODEL)
    names = [f"x{j}" for j in range(x.shape[1])]
    served = _served(x)
    rows = x.tolist()
    alerts: list[Alert] = []
    for start in range(0, len(rows), BATCH):
        batch = [
            Prediction(
                event_id=str(i),
                model=MODEL,
                features=dict(zip(names, rows[i], strict=True)),
                prediction=served[i],
                ts=T0_MS + i * STEP_MS,
            )
            for i in range(start, min(start + BATCH, len(rows)))
        ]
        alerts += monitor.observe_predictions(batch)
    return alarm_positions(alerts, "data_drift")


def driftline_concept(predicted: npt.NDArray[np.int64], truth: npt.NDArray[np.int64]) -> list[int]:
    """``concept_drift`` alarms of a ModelMonitor over joined (prediction, label) pairs."""
    monitor = ModelMonitor(MODEL)
    alerts: list[Alert] = []
    guesses, labels = predicted.tolist(), truth.tolist()
    n = len(guesses)
    for start in range(0, n, BATCH):
        pairs = []
        for i in range(start, min(start + BATCH, n)):
            ts = T0_MS + i * STEP_MS
            event_id = str(i)
            pairs.append(
                (
                    Prediction(event_id, MODEL, {}, guesses[i], ts=ts),
                    Label(event_id, MODEL, labels[i], ts=ts),
                )
            )
        alerts += monitor.observe_outcomes(pairs)
    return alarm_positions(alerts, "concept_drift")


def _river_alarms(detector: Any, values: Iterable[float]) -> set[int]:
    alarms = set()
    for i, value in enumerate(values):
        detector.update(value)
        if detector.drift_detected:
            alarms.add(i)
    return alarms


def river_adwin_columns(x: npt.NDArray[np.float64]) -> list[int]:
    """Alarms of one default ``ADWIN()`` per column of ``x``, any column counting."""
    alarms: set[int] = set()
    for column in x.T:
        alarms |= _river_alarms(drift.ADWIN(), column.tolist())
    return sorted(alarms)


def river_on_errors(name: str, errors: npt.NDArray[np.float64]) -> list[int]:
    """Alarms of River's default ``ADWIN()`` (``name="adwin"``) or ``binary.DDM()`` (``"ddm"``)."""
    detector = drift.ADWIN() if name == "adwin" else drift.binary.DDM()
    return sorted(_river_alarms(detector, errors.tolist()))


def every_k(n: int, k: int, seed: int) -> list[int]:
    """An alarm every ``k`` events, the first at a random offset in ``[0, k)``."""
    offset = int(np.random.default_rng(seed).integers(k))
    return list(range(offset, n, k))
