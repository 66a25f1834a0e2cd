"""The work of one partition in the Kafka runtime: what is checkpointed and restored as a unit.

- :class:`JoinTask`, one per input partition (the same partition number of the predictions and
  labels topics): a :class:`~driftline.pipeline.JoinStage`, plus the progress marker the monitor
  partitions need (:class:`~driftline.watermark.Progress`).
- :class:`MonitorTask`, one per partition of the internal ``joined`` topic (keyed by model, so a
  model's monitors live in exactly one task): a :class:`~driftline.watermark.MergeBuffer` that
  puts the items of all join partitions back in event-time order, then a
  :class:`~driftline.pipeline.MonitorStage` and, when the worker retrains, a
  :class:`~driftline.models.RetrainStage` fed the same items and the alerts raised on them (as
  ``driftline replay --models-out`` feeds it), so its learners, challengers and version numbers
  are checkpointed with the monitors. Neither stage needs a lateness of its own: the merge
  buffer releases items in order.

A monitor task also takes :class:`Adoption` records: a version published by ``driftline models
rollback``, which the registry writes to the joined topic keyed by its model (so it reaches the
one task that retrains that model, in order with its items) and which the session has already
verified and loaded. The retrainer serves it as its champion and numbers its next version after
it (or, if it published a version with the same number meanwhile, publishes the rolled-back model
again as its next version); an adoption read again after a restart is ignored.

Tasks are plain picklable objects with no Kafka in them; :mod:`driftline.streams.state` turns
them into signed checkpoints. Neither is written whole at every commit: a join task holds what
waits for its other half, up to the join's TTL (days of predictions), and a monitor task holds
reference and current windows for every feature (about 1 MB with 10 features) plus, when it
retrains, the learners (megabytes to tens of megabytes). Each is a :class:`Logged` task: it
keeps a log of the calls that changed it, and a checkpoint may be that log since the previous
one (:class:`Changes`), which :meth:`Logged.replay` makes again on restore. A task is a function
of its calls and their arguments (event times, never the clock), so the replayed task is the one
that was logged; the outputs of the replayed calls were published when they were first made,
and are dropped.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from driftline.events import Alert, Label, ModelVersion, Prediction
from driftline.pipeline import JoinStage, MonitorStage, PipelineSpec, Sequenced
from driftline.watermark import MergeBuffer, Progress

if TYPE_CHECKING:  # importing driftline.models (River, SciPy) takes a second or two
    from driftline.models import Release, RetrainStage

__all__ = [
    "Adoption",
    "Call",
    "Changes",
    "JoinChanges",
    "JoinTask",
    "Logged",
    "MonitorChanges",
    "MonitorOutput",
    "MonitorTask",
    "logged",
]

#: A call that changed a task: the method's name and its arguments.
Call = tuple[str, tuple[Any, ...]]
M = TypeVar("M", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Changes:
    """A task's calls since its previous checkpoint: the ``number``-th changes written after the
    whole task checkpointed at state-topic offset ``base``."""

    partition: int
    base: int
    number: int
    calls: list[Call]


class JoinChanges(Changes):
    """A :class:`JoinTask`'s changes."""


class MonitorChanges(Changes):
    """A :class:`MonitorTask`'s changes."""


def logged(method: M) -> M:
    """Mark a method of a :class:`Logged` task as a call that changes it: while the task keeps
    a log, each call is appended to it with its arguments (lists as tuples: a caller may reuse
    them), with the events it took and the time it took. Only marked methods are replayed, so
    one must not call another (both would be logged, and the inner one made twice)."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: Logged, *args: Any) -> Any:
        if self._log is None:
            return method(self, *args)
        started = time.perf_counter()
        args = tuple(tuple(a) if isinstance(a, list) else a for a in args)
        self._log.append((name, args))
        self.logged_events += sum(len(a) for a in args if isinstance(a, tuple))
        try:
            return method(self, *args)
        finally:
            self.logged_seconds += time.perf_counter() - started

    call.logged = True  # type: ignore[attr-defined]
    return cast(M, call)


class Logged:
    """A task that can log the calls that change it (:meth:`keep_log`), so that a checkpoint
    may be those calls since the previous one (:class:`Changes`), made again on restore
    (:meth:`replay`). ``logged_seconds``, the time the logged calls took, is what replaying
    them will take about: :class:`~driftline.streams.chains.Chains` bounds it. The time is
    measured for that only, and never changes what the task does."""

    stage_name = ""
    partition: int
    changes_type: type[Changes] = Changes
    _log: list[Call] | None = None  # the calls since the last checkpoint, while kept
    logged_events = 0  # the events in those calls
    logged_seconds = 0.0  # the time they took

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for name in ("_log", "logged_events", "logged_seconds"):
            state.pop(name, None)
        return state

    @property
    def logging(self) -> bool:
        """Whether the task logs its calls."""
        return self._log is not None

    def keep_log(self) -> None:
        """From now on, log the calls that change the task (:meth:`take_log`)."""
        self._log, self.logged_events, self.logged_seconds = [], 0, 0.0

    def take_log(self) -> list[Call]:
        """The calls logged since the previous take (or :meth:`keep_log`); the log starts again."""
        calls = self._log or []
        if self._log is not None:
            self.keep_log()
        return calls

    def changes(self, base: int, number: int, calls: list[Call]) -> Changes:
        """``calls`` as the ``number``-th changes after the whole checkpoint at ``base``."""
        return self.changes_type(self.partition, base, number, calls)

    def replay(self, calls: Iterable[Call]) -> None:
        """Make the logged calls again (their outputs were published when they were made)."""
        log, self._log = self._log, None
        try:
            for name, args in calls:
                if not getattr(getattr(type(self), name, None), "logged", False):
                    raise ValueError(f"not a logged call of a {self.stage_name} task: {name!r}")
                getattr(self, name)(*args)
        finally:
            self._log = log


class JoinTask(Logged):
    """The label join of one input partition, and how far in event time it has got."""

    stage_name = "join"
    changes_type = JoinChanges

    def __init__(self, partition: int, spec: PipelineSpec) -> None:
        self.partition = partition
        self.spec = spec
        self._reset()

    def _reset(self) -> None:
        self.stage = JoinStage(self.spec)
        self.newest: int | None = None  # the newest event time pushed to the stage
        self.drained = False
        self.reported: Progress | None = None  # the last progress marker sent
        self._held: tuple[list[Prediction], list[Label]] = ([], [])
        # the newest event time read from each topic, held back or not
        self.read_newest: dict[str, int] = {}

    def push(
        self,
        predictions: Sequence[Prediction],
        labels: Sequence[Label],
        frontier: int | None = None,
    ) -> list[Sequenced]:
        """:meth:`add` the events, then :meth:`release` up to ``frontier``."""
        self.add(predictions, labels)
        return self.release(frontier)

    @logged
    def add(self, predictions: Sequence[Prediction], labels: Sequence[Label]) -> None:
        """Take a batch of this partition's events, held until :meth:`release`."""
        for name, events in (("predictions", predictions), ("labels", labels)):
            if events:
                newest = max(e.ts or 0 for e in events)
                self.read_newest[name] = max(newest, self.read_newest.get(name, newest))
        self._held[0].extend(predictions)
        self._held[1].extend(labels)

    @logged
    def release(self, frontier: int | None = None) -> list[Sequenced]:
        """Join the events held, up to ``frontier`` (event time; None: all of them).

        The runtime sets a frontier while one topic is catching up, so that the other does not
        run ahead of it by more than the lateness (its events would arrive late at the join).
        """
        return self._release(frontier)

    def _release(self, frontier: int | None) -> list[Sequenced]:
        held_p, held_y = self._held
        if frontier is None:
            ready_p, ready_y = held_p, held_y
            self._held = ([], [])
        else:
            ready_p = [p for p in held_p if (p.ts or 0) <= frontier]
            ready_y = [y for y in held_y if (y.ts or 0) <= frontier]
            self._held = (
                [p for p in held_p if (p.ts or 0) > frontier],
                [y for y in held_y if (y.ts or 0) > frontier],
            )
        times = [p.ts or 0 for p in ready_p] + [y.ts or 0 for y in ready_y]
        if times:
            newest = max(times)
            self.newest = newest if self.newest is None else max(self.newest, newest)
            self.drained = False
        return self.stage.push(ready_p, ready_y)

    @property
    def held(self) -> int:
        """Events read but held back by a frontier."""
        return len(self._held[0]) + len(self._held[1])

    @logged
    def drain(self) -> list[Sequenced]:
        """Release everything held (the partition went quiet, or the run ends)."""
        items = self._release(None)
        self.drained = True
        return items + self.stage.flush()

    @logged
    def progress(self) -> Progress | None:
        """The marker to send to every monitor partition, or None if it has not changed.

        Every item at or before the watermark has been released: the join stage releases an
        event once it is ``lateness_ms`` behind the newest event time pushed.
        """
        if self.drained:
            mark = Progress(self.partition, self.newest, drained=True)
        elif self.newest is None:
            return None
        else:
            mark = Progress(self.partition, self.newest - self.spec.lateness_ms)
        if mark == self.reported:
            return None
        self.reported = mark
        return mark


class Adoption(NamedTuple):
    """A rolled-back version for a task's retrainer: the event, and its verified model."""

    event: ModelVersion
    model: Any


class MonitorOutput(NamedTuple):
    """What a batch of the joined topic caused: alerts, and the model versions promoted."""

    alerts: list[Alert]
    releases: list[Release]


class MonitorTask(Logged):
    """The monitors (and retrainers) of the models whose items land in one partition of the
    joined topic.

    ``retrain``: the retraining stage, or None when the worker does not retrain. Its signing
    key is never pickled: whoever restores the task sets ``retrain.key`` again
    (:meth:`driftline.streams.retrain.Retraining.attach`).
    """

    stage_name = "monitor"
    changes_type = MonitorChanges
    retrain: RetrainStage | None = None  # (checkpoints from before retraining lack it)

    def __init__(
        self,
        partition: int,
        spec: PipelineSpec,
        sources: int,
        retrain: RetrainStage | None = None,
    ) -> None:
        self.partition = partition
        self.spec = spec
        self.sources = sources
        self.retrain = retrain
        self._reset()

    def _reset(self) -> None:
        # The merge buffer does the ordering, so the stage needs no lateness of its own.
        self.stage = MonitorStage(dataclasses.replace(self.spec, lateness_ms=0))
        self.merge: MergeBuffer[Sequenced] = MergeBuffer(self.sources)

    @logged
    def resize(self, sources: int) -> None:
        """The input topics now have ``sources`` partitions."""
        if sources != self.sources:
            self.sources = sources
            self.merge.resize(sources)

    @logged
    def push(self, records: Sequence[Sequenced | Progress | Adoption]) -> MonitorOutput:
        """Items, progress markers and adoptions, in the order read; the alerts and versions
        they caused. An adoption applies after the items released before it."""
        merge = self.merge
        out = MonitorOutput([], [])
        for record in records:
            if isinstance(record, Progress):
                merge.progress(record)
            elif isinstance(record, Adoption):
                done = self._run(merge.pop_ready())
                out.alerts.extend(done.alerts)
                out.releases.extend(done.releases)
                if self.retrain is not None:
                    out.releases.extend(self.retrain.adopt(record.event, record.model))
            else:
                merge.push(record.ts, record.key, record)
        done = self._run(merge.pop_ready())
        return MonitorOutput(out.alerts + done.alerts, out.releases + done.releases)

    @logged
    def drain(self) -> MonitorOutput:
        """Monitor (and learn) everything held, whatever the watermarks (the run ends)."""
        return self._run(self.merge.drain(), final=True)

    def _run(self, items: list[Sequenced], final: bool = False) -> MonitorOutput:
        alerts = self.stage.push(items)
        if final:
            alerts += self.stage.flush()
        releases: list[Release] = []
        if self.retrain is not None:
            releases = self.retrain.push(items, alerts)
            if final:
                releases += self.retrain.flush()
        return MonitorOutput(alerts, releases)

    @property
    def caught_up(self) -> bool:
        """Whether every join partition has reported itself drained: all it sent has been
        pushed here, so :meth:`drain` may run without making a later item late."""
        return self.merge.drained

    @property
    def late(self) -> int:
        return self.merge.counts["late"] + self.stage.counts["late"]
