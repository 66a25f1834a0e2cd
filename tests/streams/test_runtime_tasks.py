"""The Kafka runtime's tasks without Kafka: any partitioning and interleaving, the same alerts.

An in-memory stand-in for the topics: events are spread over input partitions by ``event_id``,
join tasks read them in random chunks and send their items to "joined partitions" by model, with
progress markers; monitor tasks read those in random chunks. Tasks are pickled and restored on
the way, as a rebalance would. The alerts must be those of one :class:`Pipeline` over the stream,
and, with retraining, the model versions those of a replay's :class:`RetrainStage`.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import zlib
from typing import TypeVar

import pytest

from driftline.codec import decode_internal, encode_internal
from driftline.datasets import drifting_stream
from driftline.events import Alert, Label, ModelVersion, Prediction
from driftline.models import Release, RetrainSpec, RetrainStage
from driftline.monitors.spec import MonitorSpec
from driftline.monitors.windows import WindowSpec
from driftline.pipeline import Pipeline, PipelineSpec, Sequenced
from driftline.streams.state import dumps
from driftline.streams.tasks import Call, JoinTask, Logged, MonitorTask
from driftline.watermark import MergeBuffer, Progress

KEY = b"test-signing-key-0123456789abcdef"
RETRAIN = RetrainSpec(learner="logistic_regression", min_events=400, min_paired=100)
SPEC = PipelineSpec(
    monitor=MonitorSpec(window=WindowSpec(reference_size=400, window_size=200, check_every=50)),
    lateness_ms=30_000,
)


def _partition(key: str, count: int) -> int:
    return zlib.crc32(key.encode()) % count


def _events() -> tuple[list[Prediction], list[Label]]:
    a = drifting_stream(3000, seed=4, shift_at=1200, concept_at=2000, model="a")
    b = drifting_stream(2500, seed=5, shift_at=900, shifted=("x5",), concept_at=None, model="b")
    return a.predictions + b.predictions, a.labels + b.labels


def _key(alert: Alert) -> tuple[str, str, str, str | None]:
    return alert.alert_id, alert.status, alert.kind, alert.feature


def _simulate(
    seed: int, inputs: int, outputs: int, retrain: RetrainSpec | None = None
) -> tuple[list[Alert], list[Release]]:
    rng = random.Random(seed)
    predictions, labels = _events()
    # Within an input partition the two topics interleave, a little out of event-time order
    # (less than the lateness); the partitions themselves run as far apart as chance makes them.
    queues: list[list[Prediction | Label]] = [[] for _ in range(inputs)]
    jitter = SPEC.lateness_ms // 2
    for event in sorted(predictions + labels, key=lambda e: _ts(e) + rng.uniform(0, jitter)):
        queues[_partition(event.event_id, inputs)].append(event)
    joins = [JoinTask(p, SPEC) for p in range(inputs)]
    for task in joins:
        task.keep_log()
    stored = [(dumps(task), []) for task in joins]  # what a restore would find
    monitors = [
        MonitorTask(q, SPEC, inputs, RetrainStage(retrain, KEY, lateness_ms=0) if retrain else None)
        for q in range(outputs)
    ]
    for monitor in monitors:
        monitor.keep_log()
    kept = [(dumps(task), []) for task in monitors]
    logs: list[list[bytes]] = [[] for _ in range(outputs)]
    read = [0] * outputs
    alerts: list[Alert] = []
    releases: list[Release] = []

    def send(items: list[Sequenced], task: JoinTask) -> None:
        for item in items:
            logs[_partition(item.model, outputs)].append(encode_internal(item))
        mark = task.progress()
        if mark is not None:
            for log in logs:
                log.append(encode_internal(mark))

    def consume(q: int, upto: int) -> None:
        records = [decode_internal(b) for b in logs[q][read[q] : upto]]
        read[q] = max(read[q], upto)
        out = monitors[q].push(records)
        alerts.extend(out.alerts)
        releases.extend(out.releases)

    while any(queues):
        p = rng.randrange(inputs)
        take = rng.randint(1, 400)
        chunk, queues[p] = queues[p][:take], queues[p][take:]
        send(
            joins[p].push(
                [e for e in chunk if isinstance(e, Prediction)],
                [e for e in chunk if isinstance(e, Label)],
            ),
            joins[p],
        )
        q = rng.randrange(outputs)
        consume(q, rng.randint(read[q], len(logs[q])))
        if rng.random() < 0.3:  # a commit: each task's whole checkpoint, or its changes
            stored[p] = _commit(joins[p], stored[p], whole=rng.random() < 0.3)
            kept[q] = _commit(monitors[q], kept[q], whole=rng.random() < 0.3)
        if rng.random() < 0.1:  # a rebalance: a commit, then the tasks move
            joins[p] = _restored(JoinTask, *_commit(joins[p], stored[p], whole=False))
            stored[p] = (dumps(joins[p]), [])
            monitors[q] = _restored(MonitorTask, *_commit(monitors[q], kept[q], whole=False))
            kept[q] = (dumps(monitors[q]), [])
    for task in joins:
        send(task.drain(), task)
        assert task.stage.counts["late"] == 0
    for q in range(outputs):
        consume(q, len(logs[q]))
        out = monitors[q].drain()
        alerts += out.alerts
        releases += out.releases
        assert monitors[q].late == 0
    return alerts, releases


T = TypeVar("T", JoinTask, MonitorTask)


def _commit(task: Logged, at: tuple[bytes, list[Call]], whole: bool) -> tuple[bytes, list[Call]]:
    """What a restore finds after a commit: the task whole, or the changes since added."""
    if whole:
        task.take_log()
        return dumps(task), []
    return at[0], at[1] + task.take_log()


def _restored(kind: type[T], whole: bytes, calls: list[Call]) -> T:
    """A task from its whole checkpoint and the calls logged after it, as restore() makes it."""
    task = pickle.loads(whole)
    assert isinstance(task, kind) and not task.logging
    if isinstance(task, MonitorTask) and task.retrain is not None:
        assert task.retrain.key == b""  # never pickled: set again before the replay
        task.retrain.key = KEY
    task.replay(pickle.loads(dumps(calls)))  # the calls as read back from their checkpoint
    task.keep_log()
    return task


def _parts(task: JoinTask) -> dict[str, bytes]:
    """The task's parts, each pickled (a whole pickle shares equal strings by identity, which
    differs between a live task and a restored one)."""
    parts = {k: dumps(v) for k, v in vars(task).items() if k != "stage"}
    return parts | {f"stage.{k}": dumps(v) for k, v in vars(task.stage).items()}


def _ts(event: Prediction | Label) -> int:
    return event.ts or 0


@pytest.fixture(scope="module")
def expected() -> set[tuple[str, str, str, str | None]]:
    predictions, labels = _events()
    pipeline = Pipeline(SPEC)
    alerts = pipeline.push(predictions, labels) + pipeline.flush()
    assert {a.model for a in alerts} == {"a", "b"}
    return {_key(a) for a in alerts}


@pytest.mark.parametrize(
    ("seed", "inputs", "outputs"), [(0, 1, 1), (1, 3, 2), (2, 4, 3), (3, 2, 5)]
)
def test_partitioned_tasks_give_the_pipeline_alerts(
    expected: set[tuple[str, str, str, str | None]], seed: int, inputs: int, outputs: int
) -> None:
    alerts, _ = _simulate(seed, inputs, outputs)
    assert len(alerts) == len({a.alert_id for a in alerts}), "an alert was repeated"
    assert {_key(a) for a in alerts} == expected


def _version(event: ModelVersion) -> ModelVersion:
    """A version without what depends on the artifact's bytes (River pickles unseeded RNGs)."""
    return dataclasses.replace(event, sha256="", signature="", artifact=None, artifact_size=None)


@pytest.mark.parametrize(("seed", "inputs", "outputs"), [(5, 1, 1), (6, 3, 2)])
def test_partitioned_tasks_retrain_like_the_replay(seed: int, inputs: int, outputs: int) -> None:
    predictions, labels = _events()
    pipeline = Pipeline(SPEC)  # as driftline replay --models-out runs it
    stage = RetrainStage(RETRAIN, KEY, lateness_ms=SPEC.lateness_ms)
    items = pipeline.join.push(predictions, labels) + pipeline.join.flush()
    alerts = pipeline.monitors.push(items) + pipeline.monitors.flush()
    expected = [r.event for r in stage.push(items, alerts) + stage.flush()]
    assert {v.reason for v in expected} >= {"initial", "drift"}
    assert {v.model for v in expected} == {"a", "b"}

    _, releases = _simulate(seed, inputs, outputs, RETRAIN)
    got = sorted((r.event for r in releases), key=lambda v: (v.model, v.version))
    want = sorted(expected, key=lambda v: (v.model, v.version))
    assert [_version(v) for v in got] == [_version(v) for v in want]


def test_merge_waits_for_every_source_and_skips_drained_ones() -> None:
    merge: MergeBuffer[str] = MergeBuffer(sources=3)
    for ts, key in ((10, "c"), (5, "b"), (5, "a"), (30, "d")):
        merge.push(ts, key, f"{key}{ts}")
    merge.progress(Progress(0, 20))
    merge.progress(Progress(1, 12))
    assert merge.pop_ready() == []  # source 2 has not spoken
    merge.progress(Progress(2, None, drained=True))
    assert merge.pop_ready() == ["a5", "b5", "c10"]
    merge.push(7, "e", "late")
    assert merge.pop_ready() == ["late"] and merge.counts["late"] == 1
    merge.progress(Progress(1, 12, drained=True))
    assert merge.pop_ready() == []  # source 0 is at 20
    assert not merge.drained
    merge.progress(Progress(0, 20, drained=True))
    assert merge.pop_ready() == ["d30"]
    assert merge.drained
    merge.progress(Progress(1, 40))  # source 1 has more
    assert not merge.drained


def test_a_monitor_task_is_caught_up_once_every_join_has_drained() -> None:
    predictions, _ = _events()
    joins = [JoinTask(p, SPEC) for p in range(2)]
    task = MonitorTask(0, SPEC, 2)

    def sent(join: JoinTask, items: list[Sequenced]) -> list[Sequenced | Progress]:
        mark = join.progress()
        assert mark is not None
        return [*items, mark]

    for join in joins:
        task.push(sent(join, join.push(predictions[join.partition :: 2][:300], [])))
    assert not task.caught_up
    task.push(sent(joins[0], joins[0].drain()))
    assert not task.caught_up  # join 1 still holds items
    task.push(sent(joins[1], joins[1].drain()))
    assert task.caught_up


def test_join_task_progress_is_sent_once_per_change() -> None:
    task = JoinTask(0, SPEC)
    assert task.progress() is None  # nothing seen
    task.push([Prediction("e1", "m", {"x": 1.0}, 0, ts=100_000)], [])
    assert task.progress() == Progress(0, 100_000 - SPEC.lateness_ms)
    assert task.progress() is None
    assert [s.key for s in task.drain()] == ["p/e1"]
    assert task.progress() == Progress(0, 100_000, drained=True)


def test_drift_statistics_read_the_whole_model_detectors() -> None:
    predictions, labels = _events()
    task = MonitorTask(0, SPEC, 1)
    join = JoinTask(0, SPEC)
    items = join.push(predictions[:1500], labels[:1500]) + join.drain()
    task.push([*items, join.progress()])  # type: ignore[list-item]
    stats = {(f, d): value for f, d, value in task.stage.monitors["a"].statistics()}
    assert {f for f, _ in stats} >= {"x0", "x9", "prediction", "scores.1"}
    numeric = SPEC.monitor.numeric_test
    assert stats["x0", numeric] > 0.5 > stats["x9", numeric]  # x0 shifted by one std


def test_a_join_task_replayed_from_its_log_is_the_task_that_logged() -> None:
    rng = random.Random(7)
    predictions, labels = _events()
    events = sorted(predictions + labels, key=lambda e: _ts(e) + rng.uniform(0, 10_000))
    live = JoinTask(0, SPEC)
    live.keep_log()
    whole, calls = dumps(live), []
    for start in range(0, len(events), 250):
        chunk = events[start : start + 250]
        live.add(
            [e for e in chunk if isinstance(e, Prediction)],
            [e for e in chunk if isinstance(e, Label)],
        )
        live.release(None if rng.random() < 0.5 else _ts(chunk[0]))
        live.progress()
        if start == 2500:
            live.take_log()
            whole, calls = dumps(live), []  # written whole: the log starts again
        elif start % 1000 == 0:
            calls += live.take_log()
    calls += live.take_log()
    assert len(calls) > 20 and {name for name, _ in calls} == {"add", "release", "progress"}
    restored = _restored(JoinTask, whole, calls)
    assert _parts(restored) == _parts(live)
    assert restored.drain() == live.drain() != []
    assert restored.stage.joiner.counts == live.stage.joiner.counts
    assert restored.take_log() == live.take_log() == [("drain", ())]


def test_a_join_task_replays_only_its_own_calls() -> None:
    task = JoinTask(0, SPEC)
    with pytest.raises(ValueError, match="__setstate__"):
        task.replay([("__setstate__", ({},))])
    assert not task.logging and task.take_log() == []


def test_a_monitor_task_replayed_from_its_log_is_the_task_that_logged() -> None:
    predictions, labels = _events()
    join = JoinTask(0, SPEC)
    records: list[Sequenced | Progress] = []
    for start in range(0, len(predictions), 250):
        records += join.push(predictions[start : start + 250], labels[start : start + 250])
        mark = join.progress()
        records += [mark] if mark is not None else []
    live = MonitorTask(0, SPEC, 1, RetrainStage(RETRAIN, KEY, lateness_ms=0))
    live.keep_log()
    whole, calls = dumps(live), []
    outputs = []
    for n, start in enumerate(range(0, len(records), 300)):
        outputs.append(live.push(records[start : start + 300]))
        if n == 8:
            whole, calls = _commit(live, (whole, calls), whole=True)
        elif n % 3 == 0:
            whole, calls = _commit(live, (whole, calls), whole=False)
    whole, calls = _commit(live, (whole, calls), whole=False)
    assert len(calls) > 10 and {name for name, _ in calls} == {"push"}
    released = [r.event for out in outputs[9:] for r in out.releases]
    assert {v.reason for v in released} >= {"drift"}, "a challenger should win after the cut"

    restored = _restored(MonitorTask, whole, calls)
    for name in ("merge", "spec", "sources"):
        assert dumps(getattr(restored, name)) == dumps(getattr(live, name)), name
    assert restored.stage.counts == live.stage.counts
    for model, monitor in live.stage.monitors.items():
        assert list(restored.stage.monitors[model].statistics()) == list(monitor.statistics())
    assert restored.retrain is not None and live.retrain is not None
    for model, retrainer in live.retrain.retrainers.items():
        again = restored.retrain.retrainers[model]
        assert (again.version, again.counts) == (retrainer.version, retrainer.counts)
    last, again = live.drain(), restored.drain()
    assert [a.alert_id for a in again.alerts] == [a.alert_id for a in last.alerts]
    assert [_version(r.event) for r in again.releases] == [_version(r.event) for r in last.releases]
    assert restored.take_log() == live.take_log() == [("drain", ())]


def test_a_monitor_task_replays_only_its_own_calls() -> None:
    task = MonitorTask(0, SPEC, 1)
    with pytest.raises(ValueError, match="not a logged call of a monitor task: '_run'"):
        task.replay([("_run", ([],))])
