"""``driftline run`` retraining against a real broker: the replay's versions, exactly once.

The stream of ``test_runtime_kafka`` (a feature shift, then a concept change) with small
retraining settings: a first version after 500 labelled events, a ``drift`` version after the
concept-drift alert, ``scheduled`` ones after. Artifacts (Hoeffding trees, tens of kB) are over
the inline limit here, so they travel through the artifact store.
"""

from __future__ import annotations

import dataclasses
import io
import re
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import CollectorRegistry
from test_runtime_kafka import (
    MALFORMED,
    N,
    WorkerProcess,
    create,
    publish,
    publish_slowly,
    read_topic,
    settings_for,
    stream_events,
)

from driftline.codec import decode, encode, encode_internal
from driftline.events import Label, ModelVersion, Prediction
from driftline.models import Retrainer, load_verified
from driftline.models.artifact import sign
from driftline.sdk import ModelSubscriber
from driftline.sdk.registry import ModelRegistry, history_topic
from driftline.settings import ModelsSettings, Settings
from driftline.streams import clients
from driftline.streams.artifacts import LocalArtifactStore, fetch
from driftline.streams.metrics import PrometheusObserver
from driftline.streams.replay import replay
from driftline.streams.runtime import RunReport, run_worker
from driftline.streams.state import load_checkpoints

pytestmark = pytest.mark.kafka

MODELS_KEY = "models-key-for-tests-0123456789abcdef"
RETRAIN = {"min_events": 500, "min_paired": 100, "max_inline_bytes": 10_000}


def with_models(settings: Settings, store: Path) -> Settings:
    """``settings`` retraining (a key set, ``enabled`` left unset) with the test's spec."""
    models = ModelsSettings(key=MODELS_KEY, artifact_dir=str(store), **RETRAIN)
    return settings.model_copy(update={"models": models})


def models_env(settings: Settings) -> dict[str, str]:
    """The models settings as DRIFTLINE_MODELS_* variables, for a worker subprocess."""
    return {
        "DRIFTLINE_MODELS_KEY": MODELS_KEY,
        "DRIFTLINE_MODELS_ARTIFACT_DIR": settings.models.artifact_dir,
        **{f"DRIFTLINE_MODELS_{name.upper()}": str(value) for name, value in RETRAIN.items()},
    }


def replay_versions(
    tmp: Path, settings: Settings, predictions: list[Prediction], labels: list[Label]
) -> list[ModelVersion]:
    """What ``driftline replay --models-out`` publishes for the same events."""
    files = {}
    for name, events in (("p", predictions), ("y", labels)):
        files[name] = tmp / f"replay-{name}.jsonl"
        files[name].write_bytes(b"".join(encode(e) + b"\n" for e in events))
    out = io.BytesIO()
    replay(
        files["p"],
        files["y"],
        io.BytesIO(),
        spec=settings.pipeline_spec(),
        models_out=out,
        models=settings.models,
    )
    return [decode("model_version", line) for line in out.getvalue().splitlines()]


def published(settings: Settings) -> tuple[list[ModelVersion], list[ModelVersion]]:
    """The committed records of the history topic (checked against their keys) by version, and
    the models topic's in offset order.

    The history is keyed ``model/v<N>``, so its versions are spread over the partitions, which
    a reader may get in any order; records of one number share a partition and keep their
    order (a worker's version and a rollback that raced it for the same number).
    """
    history = read_topic(settings, history_topic(settings))
    versions = [decode("model_version", r.value()) for r in history]
    for record, version in zip(history, versions, strict=True):
        assert record.key() == f"{version.model}/v{version.version}".encode()
    versions.sort(key=lambda v: (v.model, v.version))
    current = read_topic(settings, settings.topics.models)
    assert all(r.key() == b"demo" for r in current)
    return versions, [decode("model_version", r.value()) for r in current]


def wait_for_a_version(settings: Settings, worker: WorkerProcess, timeout: float = 60) -> None:
    """Until the history topic has a committed record (read as soon as it is committed)."""
    topic = history_topic(settings)
    extra = {"isolation.level": "read_committed", "fetch.wait.max.ms": 10}
    consumer = clients.consumer(settings.kafka, f"reader-{uuid.uuid4().hex}", **extra)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    deadline = time.monotonic() + timeout
    try:
        while not any(m.error() is None for m in consumer.consume(10, timeout=0.05)):
            assert time.monotonic() < deadline, worker.log.read_text()
    finally:
        consumer.close()


def comparable(version: ModelVersion) -> ModelVersion:
    """A version without what depends on the artifact's bytes (River pickles unseeded RNGs)."""
    return dataclasses.replace(
        version, sha256="", signature="", artifact=None, artifact_uri=None, artifact_size=None
    )


# -- one uninterrupted run, shared by the tests below -----------------------------------------


@dataclass
class Run:
    settings: Settings
    report: RunReport
    registry: CollectorRegistry
    expected: list[ModelVersion]


@pytest.fixture(scope="module")
def uninterrupted(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("retrain")
    suffix = uuid.uuid4().hex[:8]
    names = ("predictions", "labels", "alerts", "models", "deadletter")
    topics = {name: f"t{suffix}.{name}" for name in names} | {"internal_prefix": f"t{suffix}.i."}
    base = Settings.load(kafka={"bootstrap": kafka_bootstrap}, topics={**topics, "partitions": 2})
    settings = with_models(settings_for(base, exit_when_idle=2.0), tmp / "store")
    create(settings)
    predictions, labels = stream_events()
    publish(settings, predictions, labels)
    registry = CollectorRegistry()
    report = run_worker(settings, observer=PrometheusObserver(registry), handle_signals=False)
    expected = replay_versions(tmp, settings, predictions, labels)
    assert [v.reason for v in expected][:3] == ["initial", "drift", "scheduled"]
    yield Run(settings, report, registry, expected)


def test_run_publishes_the_replay_versions_and_they_verify(uninterrupted: Run) -> None:
    settings, expected = uninterrupted.settings, uninterrupted.expected
    history, current = published(settings)
    assert [comparable(v) for v in history] == [comparable(v) for v in expected]
    drift = next(v for v in history if v.reason == "drift")
    alerts = {
        decode("alert", r.value()).alert_id for r in read_topic(settings, settings.topics.alerts)
    }
    assert drift.trigger_alert_id in alerts
    assert [v.version for v in current] == [v.version for v in history]  # one partition: "demo"
    assert uninterrupted.report.counts["model_versions"] == len(expected)
    assert uninterrupted.report.counts["predictions"] == N + len(MALFORMED)

    store = LocalArtifactStore(settings.models.artifact_dir)
    key = MODELS_KEY.encode()
    for version in history:
        assert version.artifact is None and version.artifact_uri  # over max_inline_bytes
        model = load_verified(version, fetch(version, store), key)
        assert model.predict_one({"x0": 1.0, "x1": -1.0}) in (0, 1)
    with ModelSubscriber(settings, "demo") as subscriber:
        deadline = time.monotonic() + 30
        while subscriber.version != history[-1].version and time.monotonic() < deadline:
            time.sleep(0.2)
        assert subscriber.version == history[-1].version
        assert not subscriber.refused

    def sample(name: str, **labels: str) -> float:
        return uninterrupted.registry.get_sample_value(name, labels) or 0.0

    for reason in {v.reason for v in expected}:
        count = sum(v.reason == reason for v in expected)
        assert sample("driftline_model_versions_total", model="demo", reason=reason) == count
    assert sample("driftline_model_current_version", model="demo") == expected[-1].version


def test_checkpoints_hold_the_retrainers_but_never_the_key(uninterrupted: Run) -> None:
    settings = uninterrupted.settings
    state = settings.topics.internal_prefix + "state"
    records = read_topic(settings, state, isolation="read_uncommitted")
    assert records
    key = MODELS_KEY.encode()
    for record in records:
        assert key not in (record.value() or b""), f"the models key is in {record.key()!r}"
    tasks = monitor_checkpoints(settings)
    stages = [task.retrain for task in tasks.values()]
    assert stages and all(stage is not None and stage.key == b"" for stage in stages)
    retrainers = [r for stage in stages if stage is not None for r in stage.retrainers.values()]
    assert [(r.model, r.version) for r in retrainers] == [("demo", len(uninterrupted.expected))]
    assert retrainers[0].key == b""


def test_kill_9_and_restarts_publish_each_version_once(kafka_settings: Settings, tmp: Path) -> None:
    settings = with_models(settings_for(kafka_settings, instance_id="w1"), tmp / "store")
    create(settings)
    predictions, labels = stream_events()
    # Until the kill, only events from before the concept change (at 2800) exist, so that the
    # kill comes between version 1 and the drift version, however fast the worker is.
    cut = predictions[2000].ts or 0
    producer = publish_slowly(
        settings,
        [p for p in predictions if (p.ts or 0) < cut],
        [y for y in labels if (y.ts or 0) < cut],
        seconds=4,
    )
    env = models_env(settings)

    # Long transactions for the first worker: killed as soon as version 1 is committed, it is
    # then well before its next commit, with the retrainer's state to restore.
    slow = settings.run.model_copy(update={"commit_interval_ms": 4000})
    first = WorkerProcess(settings.model_copy(update={"run": slow}), tmp / "first.log", env=env)
    first.wait_for("assigned:")
    wait_for_a_version(settings, first)
    first.signal(signal.SIGKILL)
    producer.join(60)
    before = len(published(settings)[0])
    second = WorkerProcess(settings, tmp / "second.log", env=env)
    second.wait_for("assigned:")
    producer = publish_slowly(  # live: the second worker commits every second meanwhile
        settings,
        [p for p in predictions if (p.ts or 0) >= cut],
        [y for y in labels if (y.ts or 0) >= cut],
        seconds=6,
    )
    time.sleep(4)
    second.signal(signal.SIGTERM)  # graceful: commit, leave; the next one restores that
    assert "commits" in second.finish(timeout=30)
    producer.join(60)
    log = WorkerProcess(settings, tmp / "last.log", "--exit-when-idle", "2", env=env).finish()
    # the second worker's last commits were changes: its learners were replayed, not read whole
    assert re.search(r"[1-9]\d* of monitor tasks\)", log), log

    expected = replay_versions(tmp, settings, predictions, labels)
    assert 0 < before < len(expected), "the kill should have come between two versions"
    history, current = published(settings)
    assert [comparable(v) for v in history] == [comparable(v) for v in expected]
    assert [v.version for v in current] == [v.version for v in expected]
    store = LocalArtifactStore(settings.models.artifact_dir)
    for version in history:
        load_verified(version, fetch(version, store), MODELS_KEY.encode())


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_a_rollback_is_adopted_and_numbered_after(kafka_settings: Settings, tmp: Path) -> None:
    settings = with_models(settings_for(kafka_settings, exit_when_idle=2.0), tmp / "store")
    create(settings)
    predictions, labels = stream_events()
    cut = 3400  # after the concept change at 2800, so that version 2 is a "drift" one
    first = run_with(settings, predictions[:cut], [y for y in labels if y.ts < predictions[cut].ts])
    assert first.counts["model_versions"] >= 2
    before, _ = published(settings)

    # a rollback that does not verify (another key) is refused; the registry's is adopted
    registry = ModelRegistry(settings)
    try:
        forged = dataclasses.replace(before[0], version=before[-1].version + 1, reason="rollback")
        write_joined(settings, encode_internal(sign(forged, b"another-key-0123456789")))
        rollback = registry.rollback("demo", 1, now_ms=predictions[cut].ts or 0)
    finally:
        registry.close()
    assert (
        rollback.version == before[-1].version + 1 and rollback.parent_version == before[-1].version
    )

    second = run_with(
        settings, predictions[cut:], [y for y in labels if y.ts >= predictions[cut].ts]
    )
    assert (second.counts["rollbacks"], second.counts["rollbacks_refused"]) == (1, 1)
    history, current = published(settings)
    at = history.index(rollback)
    after = history[at + 1 :]
    if at > len(before):
        # the worker published a version numbered like the rollback before it read the
        # rollback (items of the first run still on their way): it publishes the rolled-back
        # model again, as its next version, so that the operator's choice is what is served
        assert history[at - 1].version == rollback.version and after[0].reason == "rollback"
    assert [v.version for v in after] == list(
        range(rollback.version + 1, rollback.version + 1 + len(after))
    )
    # the adopted model predates the concept change: a challenger beats it again, and its
    # version comes after the rollback's, as its child
    assert after and after[0].parent_version == rollback.version
    assert current[-1].version == history[-1].version
    retrainer = single_retrainer(settings)
    assert retrainer.counts["adopted"] == 1 and retrainer.version == history[-1].version


def run_with(settings: Settings, predictions: list[Prediction], labels: list[Label]) -> RunReport:
    """Publish these events, then run a worker over the topics until it is idle."""
    publish(settings, predictions, labels)
    return run_worker(settings, handle_signals=False)


def write_joined(settings: Settings, value: bytes) -> None:
    """A record on the workers' joined topic, keyed by the model (as the registry writes it)."""
    producer = clients.producer(settings.kafka)
    producer.produce(settings.topics.internal_prefix + "joined", value, b"demo")
    assert producer.flush(30) == 0


def single_retrainer(settings: Settings) -> Retrainer:
    """The one retrainer in the committed checkpoints."""
    tasks = monitor_checkpoints(settings)
    retrainers = [
        r
        for task in tasks.values()
        if task.retrain is not None
        for r in task.retrain.retrainers.values()
    ]
    assert len(retrainers) == 1
    return retrainers[0]


def monitor_checkpoints(settings: Settings) -> dict[tuple[str, int], Any]:
    """The monitor tasks of the committed checkpoints."""
    return load_checkpoints(
        settings.kafka,
        settings.run.group_id,
        {"monitor": [settings.topics.internal_prefix + "joined"]},
        settings.topics.internal_prefix + "state",
        settings.state.key_bytes(),
        MODELS_KEY.encode(),
    )
