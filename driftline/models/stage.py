"""Retraining for every model of a stream, fed like the monitors: join output plus alerts.

:class:`RetrainStage` sits next to :class:`~driftline.pipeline.MonitorStage`: give it the same
:class:`~driftline.pipeline.Sequenced` items (the join's output) and the alerts the monitors
raised on them, in the same call. It puts both in event-time order with its own buffer (the
monitors' lateness, so it releases the outcomes the monitors released, and an alert right
after the outcome that raised it), routes them to one :class:`~driftline.models.Retrainer` per
model, and returns the versions promoted.

>>> from driftline.datasets import drifting_stream
>>> from driftline.pipeline import JoinStage, MonitorStage
>>> stream = drifting_stream(4000, seed=3, shift_at=None, concept_at=None)
>>> join, monitors = JoinStage(), MonitorStage()
>>> stage = RetrainStage(RetrainSpec(min_events=1000), key=b"k" * 32)
>>> items = join.push(stream.predictions, stream.labels) + join.flush()
>>> releases = stage.push(items, monitors.push(items) + monitors.flush()) + stage.flush()
>>> [(r.event.model, r.event.version, r.event.reason) for r in releases]
[('demo', 1, 'initial')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from driftline.events import Alert, ModelVersion
from driftline.models.artifact import Release
from driftline.models.retrainer import Retrainer
from driftline.models.spec import RetrainSpec
from driftline.ordering import EventTimeBuffer
from driftline.pipeline import Outcome, Sequenced

__all__ = ["RetrainStage"]

_Item = Outcome | Alert


class RetrainStage:
    """One :class:`Retrainer` per model, over join items and alerts in event-time order.

    ``spec`` applies to every model unless ``models`` has its own. ``key`` signs the versions;
    it is not pickled with the stage (set :attr:`key` again after restoring a checkpoint).
    """

    def __init__(
        self,
        spec: RetrainSpec | None = None,
        key: bytes = b"",
        *,
        models: Mapping[str, RetrainSpec] | None = None,
        lateness_ms: int = 60_000,
    ) -> None:
        self.spec = spec or RetrainSpec()
        self.models = dict(models or {})
        self.lateness_ms = lateness_ms
        self._key = key
        self._reset()

    def _reset(self) -> None:
        self._buffer: EventTimeBuffer[_Item] = EventTimeBuffer(self.lateness_ms)
        self.retrainers: dict[str, Retrainer] = {}

    @property
    def key(self) -> bytes:
        return self._key

    @key.setter
    def key(self, key: bytes) -> None:
        self._key = key
        for retrainer in self.retrainers.values():
            retrainer.key = key

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_key"] = b""  # never in a checkpoint; the retrainers drop theirs too
        return state

    def retrainer(self, model: str) -> Retrainer:
        """The retrainer of ``model``, created on first use."""
        found = self.retrainers.get(model)
        if found is None:
            spec = self.models.get(model, self.spec)
            found = self.retrainers[model] = Retrainer(model, spec, self._key)
        return found

    def push(self, items: Iterable[Sequenced], alerts: Iterable[Alert] = ()) -> list[Release]:
        """Add join items and the alerts raised on them; the versions promoted so far."""
        for seq in items:
            if not isinstance(seq.item, tuple):
                continue  # a prediction without its label teaches nothing
            self._buffer.push(seq.ts, seq.key, seq.item)
        for alert in alerts:
            # "~" sorts after the "p/" and "y/" keys of the items: an alert goes right after
            # the outcome that raised it, which has the same event time
            self._buffer.push(alert.event_ts, "~" + alert.alert_id, alert)
        return self._run(self._buffer.pop_ready())

    def flush(self) -> list[Release]:
        """Everything buffered (end of input, shutdown)."""
        return self._run(self._buffer.drain())

    def adopt(self, event: ModelVersion, model: Any) -> list[Release]:
        """A version published elsewhere (a rollback); see :meth:`Retrainer.adopt`."""
        release = self.retrainer(event.model).adopt(event, model)
        return [] if release is None else [release]

    def _run(self, items: list[_Item]) -> list[Release]:
        out: list[Release] = []
        for item in items:
            if isinstance(item, Alert):
                if item.model in self.retrainers:
                    out += self.retrainers[item.model].on_alert(item)
            else:
                out += self.retrainer(item[0].model).learn_many([item])
        return out
