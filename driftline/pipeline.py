"""The processing every runtime drives: order by event time, join labels, monitor, alert.

Two stages, pure (no I/O, no clock), so that every runtime gives the same alerts for the same
events whatever the arrival order (see :mod:`driftline.ordering`):

- :class:`JoinStage` puts predictions and labels back in event-time order and joins each label
  to its prediction. It works per input partition (events keyed by ``event_id``).
- :class:`MonitorStage` runs one :class:`~driftline.monitors.model_monitor.ModelMonitor` per
  model over predictions and joined outcomes, again in event-time order (it may receive them
  from many join partitions), and returns the alerts. It works per model.

The Kafka runtime puts a topic keyed by model between the two; the file replay and the demo use
:class:`Pipeline`, which chains them in one process.

>>> from driftline.datasets import drifting_stream
>>> stream = drifting_stream(6000, seed=1, shift_at=3000, shifted=("x3", "x4"), concept_at=None)
>>> pipeline = Pipeline()
>>> alerts = pipeline.push(stream.predictions, stream.labels) + pipeline.flush()
>>> sorted({(a.kind, a.feature) for a in alerts if a.status == "firing"})
[('data_drift', 'x3'), ('data_drift', 'x4')]
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from driftline._slots import constructor
from driftline.events import Alert, Label, Prediction
from driftline.join import DAY_MS, LabelJoiner
from driftline.monitors.model_monitor import ModelMonitor
from driftline.monitors.spec import MonitorSpec
from driftline.ordering import Entry, EventTimeBuffer

__all__ = ["JoinStage", "MonitorStage", "Outcome", "Pipeline", "PipelineSpec", "Sequenced"]

#: A prediction joined with its label.
Outcome = tuple[Prediction, Label]
_TS, _KEY = attrgetter("ts"), attrgetter("key")


@dataclass(frozen=True, slots=True)
class Sequenced:
    """What the join stage emits: a prediction or an outcome, with its place in event time.

    ``ts`` and ``key`` order items the same way in every runtime: a prediction by its own time,
    an outcome by the time of whichever of its two events came last.
    """

    ts: int
    key: str
    item: Prediction | Outcome

    @property
    def model(self) -> str:
        return self.item.model if isinstance(self.item, Prediction) else self.item[0].model


#: ``Sequenced(ts, key, item)`` in half the time (see :mod:`driftline._slots`): the join makes
#: one or two per event.
_sequenced = constructor(Sequenced)


@dataclass(frozen=True)
class PipelineSpec:
    """``monitor`` applies to every model unless ``models`` has its own spec.

    ``join_ttl_ms``: how long a prediction waits for its label, and a label for its prediction
    (7 days). ``join_dedupe_ms``: how long after its join a repeated label is still recognised
    (None: the TTL; see :mod:`driftline.join`). ``lateness_ms``: how far out of event-time
    order events may arrive and still be put back in order (1 minute). ``references``:
    reference feature values (e.g. the training set) by model, then feature; the model ``"*"``
    applies to every model without its own.
    """

    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    models: Mapping[str, MonitorSpec] = field(default_factory=dict)
    references: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    join_ttl_ms: int = 7 * DAY_MS
    lateness_ms: int = 60_000
    join_dedupe_ms: int | None = None  # a spec from an older checkpoint reads this default


class JoinStage:
    """Event-time order, then the label join. Emits :class:`Sequenced` items in order."""

    def __init__(self, spec: PipelineSpec | None = None) -> None:
        self.spec = spec or PipelineSpec()
        self._reset()

    def _reset(self) -> None:
        self._buffer: EventTimeBuffer[Prediction | Label] = EventTimeBuffer(self.spec.lateness_ms)
        self.joiner = LabelJoiner(self.spec.join_ttl_ms, self.spec.join_dedupe_ms)
        self.counts: Counter[str] = Counter()

    def push(
        self, predictions: Iterable[Prediction], labels: Iterable[Label] = ()
    ) -> list[Sequenced]:
        """Add events in any order (each with ``ts``); the items the watermark has released."""
        push = self._buffer.push_many
        predictions, labels = list(predictions), list(labels)
        push(
            [p.ts or 0 for p in predictions], ["p/" + p.event_id for p in predictions], predictions
        )
        push([y.ts or 0 for y in labels], ["y/" + y.event_id for y in labels], labels)
        return self._join(self._buffer.pop_ready_entries())

    def flush(self) -> list[Sequenced]:
        """Release and join everything buffered (end of input; shutdown)."""
        return self._join(self._buffer.drain_entries())

    def _join(self, events: list[Entry[Prediction | Label]]) -> list[Sequenced]:
        """Join released events; each keeps the event time and key it was ordered by."""
        out: list[Sequenced] = []
        append = out.append
        add_prediction, add_label = self.joiner.add_prediction, self.joiner.add_label
        for ts, key, _, event in events:
            if isinstance(event, Prediction):
                append(_sequenced(ts, key, event))
                pair = add_prediction(event)
            else:
                pair = add_label(event)
            if pair is not None:
                append(_sequenced(ts, key, pair))
        expired = self.joiner.expire()
        self.counts["unlabelled"] += len(expired.predictions)
        self.counts["orphan_labels"] += len(expired.labels)
        self.counts["late"] = self._buffer.counts["late"]
        return out


class MonitorStage:
    """Event-time order across join partitions, then one monitor per model."""

    def __init__(self, spec: PipelineSpec | None = None) -> None:
        self.spec = spec or PipelineSpec()
        self._reset()

    def _reset(self) -> None:
        self._buffer: EventTimeBuffer[Sequenced] = EventTimeBuffer(self.spec.lateness_ms)
        self.monitors: dict[str, ModelMonitor] = {}
        self.counts: Counter[str] = Counter()

    def monitor(self, model: str) -> ModelMonitor:
        monitor = self.monitors.get(model)
        if monitor is None:
            spec = self.spec.models.get(model, self.spec.monitor)
            reference = self.spec.references.get(model, self.spec.references.get("*"))
            monitor = self.monitors[model] = ModelMonitor(model, spec, reference)
        return monitor

    def push(self, items: Iterable[Sequenced]) -> list[Alert]:
        items = list(items)
        self._buffer.push_many(list(map(_TS, items)), list(map(_KEY, items)), items)
        return self._monitor(self._buffer.pop_ready_entries())

    def flush(self) -> list[Alert]:
        return self._monitor(self._buffer.drain_entries())

    def _monitor(self, items: list[Entry[Sequenced]]) -> list[Alert]:
        if not items:
            return []
        predictions: dict[str, list[Prediction]] = {}
        outcomes: dict[str, list[Outcome]] = {}
        latest: dict[str, int] = {}  # the items come in event-time order: the last is the latest
        for ts, _, _, seq in items:
            item = seq.item
            if isinstance(item, Prediction):
                model = item.model
                group = predictions.get(model)
                if group is None:
                    group = predictions[model] = []
                group.append(item)
            else:
                model = item[0].model
                pairs = outcomes.get(model)
                if pairs is None:
                    pairs = outcomes[model] = []
                pairs.append(item)
            latest[model] = ts
        alerts: list[Alert] = []
        for model in sorted(predictions.keys() | outcomes.keys()):
            monitor = self.monitor(model)
            alerts += monitor.observe_predictions(predictions.get(model, []))
            alerts += monitor.observe_outcomes(outcomes.get(model, []))
            alerts += monitor.tick(latest[model])
        self.counts["late"] = self._buffer.counts["late"]
        self.counts["alerts"] += len(alerts)
        alerts.sort(key=lambda alert: alert.event_ts)  # stable: a key's lifecycle stays in order
        return alerts


class Pipeline:
    """:class:`JoinStage` then :class:`MonitorStage` in one process (replay, demo, tests)."""

    def __init__(self, spec: PipelineSpec | None = None) -> None:
        self.spec = spec or PipelineSpec()
        self.join = JoinStage(self.spec)
        # one join stage releases its items in event-time order already (late events aside,
        # which come out at once, as from the Kafka runtime's merge buffer): the monitors need
        # no lateness of their own
        self.monitors = MonitorStage(dataclasses.replace(self.spec, lateness_ms=0))

    def push(self, predictions: Iterable[Prediction], labels: Iterable[Label] = ()) -> list[Alert]:
        return self.monitors.push(self.join.push(predictions, labels))

    def flush(self) -> list[Alert]:
        return self.monitors.push(self.join.flush()) + self.monitors.flush()
