"""Running every method on a stream and scoring it; the Elec2 stream; the whole run.

Streams are independent, so they run in a pool of processes (``jobs``); each worker builds its
stream, runs the methods on it and sends back small :class:`~bench.detection.scoring.Outcome`
records. Throughput is measured afterwards, alone, in the main process.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.detection import methods, streams
from bench.detection.scoring import Outcome, score
from driftline.datasets import elec2_stream
from driftline.pipeline import Pipeline

__all__ = [
    "EVERY_K",
    "EVERY_K_NAME",
    "GROUP_ELEC2",
    "HORIZON",
    "Task",
    "run_elec2",
    "run_scenario",
    "run_streams",
]

#: Events after a drift point within which an alarm counts as its detection.
HORIZON = 5000
#: The blind baseline alarms every EVERY_K events.
EVERY_K = 1000
EVERY_K_NAME = f"alarm every {EVERY_K}"
GROUP_ELEC2 = "elec2 (no known drifts)"
#: Relative cost per event of the slower sources, to start their streams first.
_COST = {"agrawal": 6.0, "rbf-switch": 2.0, "rbf-move": 2.0}

Runner = Callable[[], list[int]]


def _runners(scenario: streams.Scenario) -> tuple[list[tuple[str, Runner]], dict[str, float]]:
    """The methods ready to run on the scenario's stream, and facts about the stream."""
    if scenario.family == "data":
        x = streams.build_data(scenario)
        return [
            ("driftline", lambda: methods.driftline_data(x)),
            ("River ADWIN", lambda: methods.river_adwin_columns(x)),
        ], {}
    made = streams.build_concept(scenario)
    errors = made.errors
    at = scenario.drift if scenario.drift is not None else scenario.n
    info = {"error_rate_before": float(errors[:at].mean())}
    if scenario.drift is not None:
        info["error_rate_after"] = float(errors[at + streams.SETTLED :].mean())
    return [
        ("driftline", lambda: methods.driftline_concept(made.predicted, made.truth)),
        ("River ADWIN", lambda: methods.river_on_errors("adwin", errors)),
        ("River DDM", lambda: methods.river_on_errors("ddm", errors)),
    ], info


def run_scenario(scenario: streams.Scenario, horizon: int = HORIZON) -> list[Outcome]:
    """Every method on one stream, scored."""
    runners, info = _runners(scenario)
    runners.append(
        (
            EVERY_K_NAME,
            lambda: methods.every_k(scenario.n, EVERY_K, zlib.crc32(scenario.name.encode())),
        )
    )
    drifts = [] if scenario.drift is None else [scenario.drift]
    out = []
    for method, run in runners:
        alarms = run()
        delays, false_alarms, exposure = score(alarms, drifts, scenario.n, horizon)
        out.append(
            Outcome(
                scenario.name,
                scenario.family,
                scenario.group,
                method,
                scenario.n,
                len(alarms),
                drifts,
                delays,
                false_alarms,
                exposure,
                alarms,
                info,
            )
        )
    return out


def run_elec2(path: Path, limit: int | None = None) -> list[Outcome]:
    """Alarms on Elec2, which has no known drift points: every alarm is counted, none scored.

    driftline runs the whole :class:`~driftline.pipeline.Pipeline` on the dataset's events
    (:func:`~driftline.datasets.elec2_stream`: the features, the "previous label" prediction,
    labels a day late; half an hour of event time per event). River's ADWIN runs on each of
    the six features, ADWIN and DDM on the same prediction's 0/1 errors.
    """
    stream = elec2_stream(path)
    predictions, labels = stream.predictions[:limit], stream.labels[:limit]
    n = len(predictions)
    pipeline = Pipeline()
    alerts = []
    for start in range(0, n, methods.BATCH):
        end = start + methods.BATCH
        alerts += pipeline.push(predictions[start:end], labels[start:end])
    alerts += pipeline.flush()
    t0, step = predictions[0].ts or 0, 1_800_000
    names = list(predictions[0].features)
    x = np.array([[p.features[k] for k in names] for p in predictions], dtype=np.float64)
    errors = np.array(
        [float(p.prediction != y.label) for p, y in zip(predictions, labels, strict=True)]
    )
    runs: list[tuple[str, Runner]] = [
        ("driftline data", lambda: methods.alarm_positions(alerts, "data_drift", t0, step)),
        ("River ADWIN per feature", lambda: methods.river_adwin_columns(x)),
        ("driftline concept", lambda: methods.alarm_positions(alerts, "concept_drift", t0, step)),
        ("River ADWIN errors", lambda: methods.river_on_errors("adwin", errors)),
        ("River DDM errors", lambda: methods.river_on_errors("ddm", errors)),
        (EVERY_K_NAME, lambda: methods.every_k(n, EVERY_K, 7)),
    ]
    return [
        Outcome("elec2", "elec2", GROUP_ELEC2, name, n, len(alarms), [], [], 0, 0, alarms)
        for name, run in runs
        for alarms in [run()]
    ]


def _cost(scenario: streams.Scenario) -> float:
    return scenario.n * _COST.get(scenario.source, 1.0)


Task = tuple[Callable[..., list[Outcome]], tuple[Any, ...]]


def run_streams(
    scenarios: Sequence[streams.Scenario], jobs: int, extra: Sequence[Task] = ()
) -> Iterator[Outcome]:
    """Outcomes of the ``extra`` calls then of every scenario, computed by ``jobs`` processes."""
    ordered = sorted(scenarios, key=_cost, reverse=True)
    tasks: list[Task] = [*extra, *((run_scenario, (s,)) for s in ordered)]
    if jobs <= 1:
        for fn, args in tasks:
            yield from fn(*args)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(fn, *args) for fn, args in tasks]
        for future in futures:
            yield from future.result()
