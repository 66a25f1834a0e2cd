"""A serving process and driftline in one loop, and the baselines, on one stream.

**Served**: each row is predicted by the newest version published before it (none yet: class 0),
logged as a prediction event; its label arrives ``delay`` rows later. driftline joins them
(:class:`~driftline.pipeline.JoinStage`), monitors the served model's errors
(:class:`~driftline.pipeline.MonitorStage`, whose concept-drift alerts start challengers) and
retrains (:class:`~driftline.models.RetrainStage`); every version is loaded back through
:func:`~driftline.models.load_verified`, as a service would. Rows are processed in chunks of
``CHUNK``; a version published while a chunk is processed serves from the next chunk on.

**Baselines** on the same rows: the same learner trained on the first ``static_share`` rows and
frozen; River's Hoeffding adaptive tree and ARF learning on every row once its label arrives
(the same delay: no process can learn earlier); the previous row's label (``previous``: the
classic Elec2 baseline, which needs the label of the row just before, so it is not available
to any process when labels arrive ``delay`` > 1 rows late); and the latest label that has
arrived (``latest``: the label ``delay`` rows back, what a "previous label" service can do).

Accuracy is measured on the rows after the first ``static_share``, the same rows for all.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bench.retrain.streams import BenchStream
from driftline.datasets import T0_MS
from driftline.events import Label, Prediction
from driftline.models import RetrainSpec, RetrainStage, load_verified, make_learner
from driftline.models.learners import Task
from driftline.pipeline import JoinStage, MonitorStage

__all__ = ["Result", "baseline", "serve"]

KEY = b"bench-signing-key-0123456789abcdef"
CHUNK = 16


@dataclass
class Result:
    stream: str
    n: int
    served: float
    versions: list[tuple[int, str, int]] = field(default_factory=list)  # (version, reason, row)
    seconds: float = 0.0
    alerts: int = 0
    baselines: dict[str, float] = field(default_factory=dict)

    def per_10k(self) -> float:
        return 1e4 * len(self.versions) / self.n

    def reasons(self) -> Counter[str]:
        return Counter(reason for _, reason, _ in self.versions)

    def promotion_delay(self, change_at: int | None) -> int | None:
        """Rows from the concept change to the first version after it (None: none)."""
        if change_at is None:
            return None
        after = [row for _, reason, row in self.versions if row >= change_at]
        return after[0] - change_at if after else None


def serve(stream: BenchStream, spec: RetrainSpec, start: int) -> Result:
    began = time.perf_counter()
    join, monitors = JoinStage(), MonitorStage()
    stage = RetrainStage(spec, KEY, lateness_ms=join.spec.lateness_ms)
    served: Any = None
    version: int | None = None
    result = Result(stream.name, len(stream.rows) - start, 0.0)
    right = 0
    waiting: deque[Label] = deque()
    for first in range(0, len(stream.rows), CHUNK):
        predictions = []
        for i in range(first, min(first + CHUNK, len(stream.rows))):
            x, truth = stream.rows[i]
            said = served.predict_one(x) if served is not None else None
            if i >= start:
                right += said == truth
            ts = T0_MS + i * stream.step_ms
            event_id = f"e{i}"
            predictions.append(
                Prediction(event_id, "m", x, said if said is not None else 0, version, ts)
            )
            waiting.append(Label(event_id, "m", truth, ts + stream.delay * stream.step_ms))
        now = predictions[-1].ts or 0
        due = []
        while waiting and (waiting[0].ts or 0) <= now:
            due.append(waiting.popleft())
        items = join.push(predictions, due)
        alerts = monitors.push(items)
        result.alerts += sum(a.kind == "concept_drift" and a.status == "firing" for a in alerts)
        for release in stage.push(items, alerts):
            event = release.event
            served, version = load_verified(event, release.artifact, KEY), event.version
            row = (event.created_ts - T0_MS) // stream.step_ms
            result.versions.append((event.version, event.reason, row))
    result.served = right / result.n
    result.seconds = time.perf_counter() - began
    return result


def baseline(stream: BenchStream, learner: Any, start: int, *, frozen_after: int | None) -> float:
    """Prequential accuracy of ``learner`` with labels ``stream.delay`` rows late; it stops
    learning after ``frozen_after`` rows (a static model) when given."""
    right = 0
    pending: deque[tuple[dict[str, Any], Any]] = deque()
    for i, (x, truth) in enumerate(stream.rows):
        if i >= start:
            right += learner.predict_one(x) == truth
        pending.append((x, truth))
        if len(pending) > stream.delay:
            seen_x, seen_y = pending.popleft()
            if frozen_after is None or i - stream.delay < frozen_after:
                learner.learn_one(seen_x, seen_y)
    return right / (len(stream.rows) - start)


def baselines(stream: BenchStream, spec: RetrainSpec, start: int) -> dict[str, float]:
    task: Task = "classification"
    out = {
        "static": baseline(
            stream, make_learner(spec.learner, task, spec.seed), start, frozen_after=start
        ),
        "hat": baseline(
            stream, make_learner("hoeffding_adaptive_tree", task, 1), start, frozen_after=None
        ),
        "arf": baseline(
            stream, make_learner("adaptive_random_forest", task, 1), start, frozen_after=None
        ),
    }
    previous = stream.previous_label or [None] + [y for _, y in stream.rows[:-1]]
    truths = [y for _, y in stream.rows]
    n = len(truths) - start
    out["previous"] = sum(p == y for p, y in zip(previous[start:], truths[start:], strict=True)) / n
    lag = max(stream.delay, 1)
    out["latest"] = sum(truths[i - lag] == truths[i] for i in range(start, len(truths))) / n
    return out
