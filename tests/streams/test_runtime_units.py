"""Pieces of ``driftline run`` that need no broker: settings, metrics endpoint, locations,
the retraining glue."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import pickle
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition
from prometheus_client import CollectorRegistry

from driftline.cli import main
from driftline.codec import decode
from driftline.datasets import drifting_stream
from driftline.errors import BrokerError, ConfigError
from driftline.events import Alert, ModelVersion
from driftline.models import RetrainSpec, RetrainStage, load_verified
from driftline.pipeline import JoinStage, PipelineSpec
from driftline.settings import MetricsSettings, ModelsSettings, Settings
from driftline.streams import chains as chains_module
from driftline.streams.artifacts import LocalArtifactStore, fetch
from driftline.streams.chains import Chains
from driftline.streams.metrics import PrometheusObserver, serve_metrics
from driftline.streams.retrain import Retraining
from driftline.streams.runtime import Topology, Worker
from driftline.streams.state import CheckpointWriter, Location, restore
from driftline.streams.tasks import Changes, JoinTask, MonitorTask

MODELS_KEY = "models-key-for-tests-0123456789abcdef"
STATE = {"key": "state-key-for-tests-0123456789abcdef"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_are_served_and_can_be_turned_off() -> None:
    assert serve_metrics(MetricsSettings(port=0), CollectorRegistry()) is None
    assert serve_metrics(MetricsSettings(enabled=False), CollectorRegistry()) is None
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    observer.records_in("driftline.predictions", 7)
    observer.dead_letters("schema", 2)
    observer.alerts([Alert("a1", "fraud", "data_drift", "firing", "critical", "psi", 5, "m")])
    observer.drift_statistics("fraud", [("amount", "psi", 0.31)])
    observer.join_counts(0, {"predictions": 10, "joined": 9})
    version = ModelVersion("fraud", 3, 5, "drift", "river", "00", "", {})
    observer.model_versions([version, ModelVersion("fraud", 4, 6, "drift", "river", "0", "", {})])
    port = _free_port()
    server = serve_metrics(MetricsSettings(host="127.0.0.1", port=port), registry)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'driftline_records_in_total{topic="driftline.predictions"} 7.0' in body
    assert 'driftline_deadletter_total{reason="schema"} 2.0' in body
    assert 'driftline_alerts_total{kind="data_drift",severity="critical"} 1.0' in body
    assert 'driftline_drift_statistic{detector="psi",feature="amount",model="fraud"} 0.31' in body
    assert 'driftline_join_coverage_ratio{partition="0"} 0.9' in body
    assert 'driftline_model_versions_total{model="fraud",reason="drift"} 2.0' in body
    assert 'driftline_model_current_version{model="fraud"} 4.0' in body


def test_checkpoint_locations_round_trip_through_offset_metadata() -> None:
    chain = Location((42, 43), 1, ((50,), (61, 62, 63)))
    for where in (Location((42,), 3), Location((42, 43, 45), 0), chain):
        assert Location.parse(where.metadata()) == where
    assert chain.metadata() == "driftline-state 1@42,43;50;61,62,63"
    for other in (None, "", "something else", "driftline-state x@y", "driftline-state 1@4;x"):
        assert Location.parse(other) is None
    # the newest of two locations: more changes after the same checkpoint, or a newer one
    assert Location((42, 43), 1) < Location((42, 43), 1, ((50,),)) < chain < Location((70,), 1)


class _Producer:
    """Delivers every record at the next offset of its partition when flushed."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes, int, int]] = []  # key, partition, offset
        self._pending: list[tuple[Any, bytes, int]] = []
        self._next: dict[int, int] = {}

    def produce(self, topic: str, value: bytes, key: bytes, partition: int, on_delivery: Any):
        self._pending.append((on_delivery, key, partition))

    def flush(self, timeout: float) -> int:
        for callback, key, partition in self._pending:
            offset = self._next.get(partition, 0)
            self._next[partition] = offset + 1
            self.records.append((key, partition, offset))
            callback(None, SimpleNamespace(offset=lambda offset=offset: offset))
        self._pending.clear()
        return 0


def _commit(chains: Chains, producer: _Producer, tasks: dict[Any, Any]) -> dict[Any, Location]:
    writer = CheckpointWriter(producer, ("state", 2), b"k" * 32, 1_000_000)  # type: ignore[arg-type]
    for tid, task in tasks.items():
        chains.write(writer, tid, task)
    return chains.locations(writer, 1.0)


def test_a_join_task_is_written_whole_then_as_changes_until_they_outweigh_it() -> None:
    stream = drifting_stream(3000, seed=1)
    spec = PipelineSpec(join_ttl_ms=10**12)  # nothing expires: the task grows with the stream
    join, monitor = JoinTask(0, spec), MonitorTask(1, spec, 1)
    join.keep_log()
    chains, producer = Chains(), _Producer()
    wheres = []
    for start in range(0, 3000, 100):
        join.add(stream.predictions[start : start + 100], stream.labels[start : start + 50])
        join.release()
        wheres.append(_commit(chains, producer, {("join", 0): join, ("monitor", 1): monitor}))
    keys = [key.decode() for key, *_ in producer.records]
    assert keys[:4] == ["join/0", "monitor/1", "join/0~1", "monitor/1"]
    assert not any("monitor/1~" in k for k in keys)  # a task that keeps no log is whole
    lengths = [len(w[("join", 0)].changes) for w in wheres]
    # changes follow the whole task until they weigh more than it; it is written whole again
    # (the task grows as fast as its changes: each chain is about as long as all before it)
    assert lengths[:2] == [0, 1] and max(lengths) >= 8 and 3 <= lengths.count(0) <= 6, lengths
    assert all(b in (a + 1, 0) for a, b in itertools.pairwise(lengths))
    for where, length in zip(wheres, lengths, strict=True):
        base = where[("join", 0)]
        at = {(p, o): k for k, p, o in producer.records}
        assert at[(base.partition, base.offsets[0])] == b"join/0"
        numbers = [at[(base.partition, c[0])] for c in base.changes]
        assert numbers == [f"join/0~{n}".encode() for n in range(1, length + 1)]

    # without a log, and after the task left the worker, the next checkpoint is whole
    chains.forget(("join", 0))
    assert _commit(chains, producer, {("join", 0): join})[("join", 0)].changes == ()
    assert _commit(chains, producer, {("join", 0): join})[("join", 0)].changes != ()
    plain = JoinTask(2, spec)
    for _ in range(3):
        assert _commit(chains, producer, {("join", 2): plain})[("join", 2)].changes == ()


def test_changes_stop_before_the_location_outgrows_offset_metadata() -> None:
    stream = drifting_stream(2000, seed=1)
    join = JoinTask(0, PipelineSpec(join_ttl_ms=10**12))
    join.keep_log()
    join.add(stream.predictions[:1500], [])  # a big task, then small changes
    chains, producer = Chains(max_metadata=60), _Producer()
    lengths = []
    for start in range(1500, 1540):
        join.add(stream.predictions[start : start + 1], [])
        where = _commit(chains, producer, {("join", 0): join})[("join", 0)]
        assert len(where.metadata()) <= 60 + 21
        lengths.append(len(where.changes))
    assert max(lengths) >= 2 and lengths.count(0) >= 3


def test_run_needs_a_state_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRIFTLINE_STATE_KEY", raising=False)
    with pytest.raises(ConfigError, match="DRIFTLINE_STATE_KEY"):
        Settings.load().state.key_bytes()
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--metrics-port", "0"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: driftline run signs its state checkpoints")


def test_run_retrains_when_a_models_key_is_set_unless_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DRIFTLINE_MODELS_KEY", "DRIFTLINE_MODELS_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    assert not ModelsSettings().retrains()
    assert ModelsSettings(key=MODELS_KEY).retrains()
    assert not ModelsSettings(key=MODELS_KEY, enabled=False).retrains()
    assert Worker(Settings.load(state=STATE)).retraining is None
    assert Worker(Settings.load(state=STATE, models={"key": MODELS_KEY})).retraining is not None
    with pytest.raises(ConfigError, match="DRIFTLINE_MODELS_KEY"):
        Worker(Settings.load(state=STATE, models={"enabled": True}))
    monkeypatch.setenv("DRIFTLINE_MODELS_ENABLED", "false")
    monkeypatch.setenv("DRIFTLINE_MODELS_KEY", MODELS_KEY)
    assert Settings.load().models.enabled is False
    assert "enabled" not in Settings.load().models.retrain_spec().to_dict()


def _retraining(tmp: Path, **topics: int) -> Retraining:
    models = {
        "key": MODELS_KEY,
        "artifact_dir": str(tmp / "store"),
        "learner": "logistic_regression",
    }
    return Retraining(Settings.load(models=models, topics=topics))


def test_attach_gives_restored_tasks_the_key_their_checkpoint_lacks(tmp_path: Path) -> None:
    retraining = _retraining(tmp_path)
    fresh = MonitorTask(0, PipelineSpec(), 1)
    retraining.attach(fresh)
    assert fresh.retrain is not None and fresh.retrain.key == MODELS_KEY.encode()
    assert fresh.retrain.lateness_ms == 0  # the merge buffer orders the items already
    fresh.retrain.retrainer("demo")
    restored = pickle.loads(pickle.dumps(fresh))
    assert MODELS_KEY.encode() not in pickle.dumps(fresh)
    assert restored.retrain.key == b"" and restored.retrain.retrainers["demo"].key == b""
    retraining.attach(restored)
    assert restored.retrain.retrainers["demo"].key == MODELS_KEY.encode()


@pytest.mark.parametrize("max_message_bytes", [8 << 20, 1024])
def test_versions_go_to_both_registry_topics_inline_or_by_reference(
    tmp_path: Path, max_message_bytes: int
) -> None:
    retraining = _retraining(tmp_path, max_message_bytes=max_message_bytes)
    stream = drifting_stream(600, seed=2, shift_at=None, concept_at=None)
    stage = RetrainStage(RetrainSpec(learner="logistic_regression", min_events=500), b"k" * 32)
    join = JoinStage()
    releases = stage.push(join.push(stream.predictions, stream.labels) + join.flush())
    releases += stage.flush()
    assert len(releases) == 1
    records: list[tuple[str, bytes, bytes | None]] = []
    events = retraining.publish(releases, lambda *record: records.append(record))
    models, history = retraining.topics
    assert [(topic, key) for topic, _, key in records] == [
        (history, b"demo/v1"),
        (models, b"demo"),
    ]
    assert [decode("model_version", value) for _, value, _ in records] == events * 2
    inline = max_message_bytes > 1 << 20
    assert (events[0].artifact is not None) == inline
    assert (events[0].artifact_uri is None) == inline
    data = fetch(events[0], LocalArtifactStore(tmp_path / "store"))
    load_verified(events[0], data, b"k" * 32)


def test_restore_refuses_a_committed_offset_it_could_not_read() -> None:
    """A per-partition error from the broker is not "nothing committed": starting those tasks
    afresh would monitor (and retrain on) the whole topic again."""
    topology = Topology("p", "y", "j", "s", "a", "d", 1, 1, 1)
    assigned = [TopicPartition(t, 0) for t in ("p", "y", "j")]

    def consumer(error: KafkaError | None) -> Any:
        committed = [
            SimpleNamespace(topic=t, partition=0, offset=7, metadata=None, error=error)
            for t in ("p", "y", "j")
        ]
        return SimpleNamespace(committed=lambda partitions, timeout: committed)

    unstable = KafkaError(KafkaError.UNSTABLE_OFFSET_COMMIT)
    no_reader: Any = None  # nothing to read: no checkpoint locations
    with pytest.raises(BrokerError, match=r"committed offset of p\[0\] could not be read"):
        restore(consumer(unstable), no_reader, assigned, topology, PipelineSpec())
    joins, monitors, positions = restore(
        consumer(None), no_reader, assigned, topology, PipelineSpec()
    )
    assert isinstance(joins[0], JoinTask) and isinstance(monitors[0], MonitorTask)
    assert positions == {("p", 0): 7, ("y", 0): 7, ("j", 0): 7}


def test_a_rollback_whose_store_is_down_restarts_the_session_and_a_bad_one_is_refused() -> None:
    """An artifact store outage is a Restart (the rollback record is read again after it); an
    artifact that does not verify is refused and counted."""
    from collections import Counter

    from driftline.errors import StoreUnavailable
    from driftline.models.artifact import ArtifactError
    from driftline.streams.session import Session
    from driftline.streams.transaction import Restart

    event = ModelVersion("demo", 3, 10**13, "rollback", "river", "0" * 64, "sig", {}, 2)

    def session(failure: Exception) -> Any:
        def load(_: ModelVersion) -> Any:
            raise failure

        retraining = SimpleNamespace(load=load)  # Retraining.adoption around this load
        retraining.adoption = functools.partial(Retraining.adoption, retraining)
        worker = SimpleNamespace(retraining=retraining)
        return SimpleNamespace(worker=worker, read=Counter())

    down = session(StoreUnavailable("cannot reach http://minio:9000"))
    with pytest.raises(Restart, match="rollback of model demo to version 3: cannot reach"):
        Session._adoption(down, event)
    assert not down.read
    forged = session(ArtifactError("signature does not verify"))
    assert Session._adoption(forged, event) is None
    assert forged.read["rollbacks_refused"] == 1


def test_a_failed_session_is_restarted_and_counted_by_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Worker.run starts a new session after a Restart, counts it in its report and tells the
    observer why (the Prometheus counter driftline_restarts_total{reason=...})."""
    from driftline.streams import runtime, session
    from driftline.streams.transaction import Restart

    failures = [Restart("store down", reason="artifact_store"), Restart("broker went away")]
    started: list[int] = []

    class FakeSession:
        def __init__(self, worker: Any, topology: Any) -> None:
            started.append(len(started))

        def run(self) -> None:
            if failures:
                raise failures.pop(0)

        def close(self, commit: bool) -> None:
            pass

    topology = Topology("p", "y", "j", "s", "a", "d", 1, 1, 1)
    monkeypatch.setattr(runtime, "check_topics", lambda settings: topology)
    monkeypatch.setattr(session, "Session", FakeSession)
    registry = CollectorRegistry()
    worker = Worker(Settings.load(state=STATE), PrometheusObserver(registry))
    report = worker.run()
    assert len(started) == 3 and report.counts["restarts"] == 2
    value = registry.get_sample_value
    assert value("driftline_restarts_total", {"reason": "artifact_store"}) == 1
    assert value("driftline_restarts_total", {"reason": "kafka"}) == 1


def test_a_monitor_task_is_written_as_changes_until_replaying_them_would_take_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = drifting_stream(3000, seed=3)
    join = JoinTask(0, PipelineSpec())
    items = join.push(stream.predictions, stream.labels) + join.drain()
    monitor = MonitorTask(0, PipelineSpec(), 1)
    monitor.push(items[:2000])  # its windows full
    monitor.keep_log()
    clock = itertools.count(step=0.5)  # every logged call takes half a second to make
    monkeypatch.setattr("driftline.streams.tasks.time.perf_counter", lambda: next(clock))
    chains, producer = Chains(max_replay_seconds=1.6), _Producer()
    lengths = []
    for start in range(2000, 3000, 50):
        monitor.push(items[start : start + 50])
        lengths.append(
            len(_commit(chains, producer, {("monitor", 0): monitor})[("monitor", 0)].changes)
        )
    # 50 items weigh far less than the windows: only the replay time ends a chain (3 calls)
    assert lengths[:6] == [0, 1, 2, 3, 0, 1], lengths
    keys = [key.decode() for key, *_ in producer.records]
    assert keys[:3] == ["monitor/0", "monitor/0~1", "monitor/0~2"]


def test_changes_that_keep_outweighing_the_task_are_pickled_less_and_less_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # it holds 1,000 predictions; each commit brings 3,000 more and the labels of the 3,000
    # oldest: its changes outweigh it, every time
    stream = drifting_stream(140_000, seed=4, label_delay=1000)
    join = JoinTask(0, PipelineSpec(lateness_ms=0, join_dedupe_ms=0))
    join.add(stream.predictions[:1000], [])
    join.release()
    join.keep_log()
    tried: list[bool] = []
    real = chains_module.dumps

    def dumps(obj: Any) -> bytes:
        tried.append(isinstance(obj, Changes))
        return real(obj)

    monkeypatch.setattr(chains_module, "dumps", dumps)
    chains, producer = Chains(), _Producer()
    for c in range(44):
        start = 1000 + 3000 * c
        join.add(stream.predictions[start : start + 3000], stream.labels[3000 * c : start + 2000])
        join.release()
        assert _commit(chains, producer, {("join", 0): join})[("join", 0)].changes == ()
    # written whole 44 times; its changes were pickled to check 5 times (14 times, about every
    # third commit, before the back-off)
    assert 2 <= sum(tried) <= 7, sum(tried)


def test_changes_resume_after_a_few_heavy_events_made_them_look_too_big() -> None:
    stream = drifting_stream(5000, seed=2)
    join = JoinTask(0, PipelineSpec(join_ttl_ms=10**12))
    join.keep_log()
    join.add(stream.predictions[:3000], [])
    chains, producer = Chains(), _Producer()
    _commit(chains, producer, {("join", 0): join})  # whole
    heavy = [
        dataclasses.replace(p, features={f"f{i}": i + n / 7 for i in range(1000)})
        for n, p in enumerate(stream.predictions[3000:3100])
    ]
    join.add(heavy, [])  # too big to be changes: whole, and an event now looks heavy
    assert not _commit(chains, producer, {("join", 0): join})[("join", 0)].changes
    lengths = []
    for n, start in enumerate(range(3100, 5000, 200)):  # light events, as many joined: steady
        join.add(stream.predictions[start : start + 200], stream.labels[200 * n : 200 * n + 200])
        lengths.append(len(_commit(chains, producer, {("join", 0): join})[("join", 0)].changes))
    assert lengths[0] == 0 and max(lengths) >= 2, lengths
