"""``driftline run`` against a real broker: alerts, exactly once through crashes, scale-out.

Streams are a few thousand events with small monitor windows, so that the file runs in a couple
of minutes on two cores. Workers run in-process where that is enough, and as subprocesses where
the test kills them. The broker-restart test needs a kafka-local broker the test may restart:
it runs only with ``DRIFTLINE_TEST_BROKER_RESTART=1`` (it would disrupt a shared broker).
"""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition
from prometheus_client import CollectorRegistry

from driftline.checkpoint import seal
from driftline.cli import main
from driftline.codec import decode, decode_internal_many, encode
from driftline.datasets import drifting_stream
from driftline.errors import BrokerError, StateError
from driftline.events import Alert, Label, Prediction
from driftline.pipeline import PipelineSpec, Sequenced
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.metrics import PrometheusObserver
from driftline.streams.replay import replay
from driftline.streams.runtime import Worker, check_topics, run_worker
from driftline.streams.state import Location, dumps, load_checkpoints
from driftline.streams.tasks import JoinChanges, JoinTask, MonitorChanges
from driftline.streams.topics import create_topics

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
KEY = "test-state-key-0123456789abcdef"
N, SHIFT_AT, CONCEPT_AT = 4000, 1500, 2800
MONITOR = {"window": {"reference_size": 500, "window_size": 250, "check_every": 50}}
MALFORMED = [b"{not json", b'{"event_id": "bad", "model": "demo", "features": 3, "prediction": 1}']
AlertKey = tuple[str, str, str, str | None]


# -- helpers ----------------------------------------------------------------------------------


def settings_for(base: Settings, **run: object) -> Settings:
    """The test's topics and broker, with small windows, a state key and no metrics server."""
    group = f"g{uuid.uuid4().hex[:8]}"
    return Settings.load(
        kafka=base.kafka.model_dump(),
        # small records for the workers, so that checkpoints span several (see create())
        topics={**base.topics.model_dump(), "max_message_bytes": 100_000},
        monitor=MONITOR,
        pipeline={"join_ttl_ms": 600_000},
        state={"key": KEY},
        metrics={"enabled": False},
        run={"group_id": group, "commit_interval_ms": 300, "session_timeout_ms": 6000, **run},
    )


def create(settings: Settings) -> None:
    """The topics, with the default record size limit (the workers' limit is smaller)."""
    topics = settings.topics.model_copy(update={"max_message_bytes": 8 << 20})
    create_topics(settings.model_copy(update={"topics": topics}))


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The settings as DRIFTLINE_* variables, for a worker subprocess."""
    import orjson

    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
    env["DRIFTLINE_KAFKA_BOOTSTRAP"] = settings.kafka.bootstrap
    for name, value in settings.topics.model_dump().items():
        env[f"DRIFTLINE_TOPICS_{name.upper()}"] = str(value)
    for name, value in settings.run.model_dump().items():
        if value is not None:
            env[f"DRIFTLINE_RUN_{name.upper()}"] = str(value)
    env["DRIFTLINE_MONITOR"] = orjson.dumps(settings.monitor).decode()
    env["DRIFTLINE_PIPELINE_JOIN_TTL_MS"] = str(settings.pipeline.join_ttl_ms)
    env["DRIFTLINE_STATE_KEY"] = KEY
    env["DRIFTLINE_METRICS_ENABLED"] = "false"
    env.update(extra)
    return env


class WorkerProcess:
    """``driftline run`` in a subprocess; its stderr goes to a file (a pipe could fill up)."""

    def __init__(
        self, settings: Settings, log: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftline", "run", *args],
                env=worker_env(settings, **(env or {})),
                stderr=handle,
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until the worker's log has ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"worker never said {text!r}:\n{self.log.read_text()}")
            time.sleep(0.1)

    def finish(self, timeout: float = 120) -> str:
        """Wait for a clean exit; the log. No event may have come later than the lateness (the
        test streams are in order): a late one is monitored out of order."""
        code = self.process.wait(timeout)
        out = self.log.read_text()
        assert code == 0, out
        assert re.findall(r"(\d+) late events", out) in ([], ["0"]), out
        return out

    def signal(self, number: int) -> None:
        self.process.send_signal(number)
        if number == signal.SIGKILL:
            self.process.wait(10)


def stream_events(labelled_every: int = 1) -> tuple[list[Prediction], list[Label]]:
    """The drifting stream; with ``labelled_every`` > 1 some predictions never get a label."""
    stream = drifting_stream(N, seed=3, shift_at=SHIFT_AT, concept_at=CONCEPT_AT)
    labels = [y for i, y in enumerate(stream.labels) if labelled_every == 1 or i % labelled_every]
    return stream.predictions, labels


def publish(settings: Settings, predictions: list[Prediction], labels: list[Label]) -> None:
    """Both topics in event-time order, as services would write them, plus malformed records."""
    producer = clients.producer(settings.kafka)
    events = sorted([*predictions, *labels], key=lambda e: e.ts or 0)
    for event in events:
        topic = (
            settings.topics.predictions if isinstance(event, Prediction) else settings.topics.labels
        )
        producer.produce(topic, key=event.event_id.encode(), value=encode(event))
    for value in MALFORMED:
        producer.produce(settings.topics.predictions, key=b"bad", value=value)
    assert producer.flush(30) == 0


def publish_slowly(
    settings: Settings, predictions: list[Prediction], labels: list[Label], seconds: float
) -> threading.Thread:
    """Publish in a thread, spread over ``seconds`` (a live stream): 160 bursts, each spanning
    less event time than half the lateness and delivered before the next, so that the topics
    are never further apart than that, as in a live stream (a burst's labels may still reach
    the broker after its predictions; a producer left to queue bursts on a loaded machine
    would drift them apart by more than the lateness)."""

    def work() -> None:
        producer = clients.producer(settings.kafka)
        events = sorted([*predictions, *labels], key=lambda e: e.ts or 0)
        step = max(1, len(events) // 160)
        for i in range(0, len(events), step):
            for event in events[i : i + step]:
                topic = (
                    settings.topics.predictions
                    if isinstance(event, Prediction)
                    else settings.topics.labels
                )
                producer.produce(topic, key=event.event_id.encode(), value=encode(event))
            assert producer.flush(30) == 0  # delivered before the next burst is produced
            time.sleep(seconds / 160)
        for value in MALFORMED:
            producer.produce(settings.topics.predictions, key=b"bad", value=value)
        assert producer.flush(120) == 0

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def replay_alerts(
    tmp: Path, settings: Settings, predictions: list[Prediction], labels: list[Label]
) -> list[Alert]:
    """What ``driftline replay`` says about the same events."""
    files = {}
    for name, events in (("p", predictions), ("y", labels)):
        files[name] = tmp / f"{name}.jsonl"
        files[name].write_bytes(b"".join(encode(e) + b"\n" for e in events))
    out = io.BytesIO()
    replay(files["p"], files["y"], out, spec=settings.pipeline_spec())
    return [decode("alert", line) for line in out.getvalue().splitlines()]


def keys(alerts: list[Alert]) -> set[AlertKey]:
    return {(a.alert_id, a.status, a.kind, a.feature) for a in alerts}


def read_topic(
    settings: Settings, topic: str, isolation: str = "read_committed", timeout: float = 30
) -> list[Message]:
    """Every committed record of ``topic`` (or every record), up to its end when called."""
    extra = {"enable.partition.eof": True, "isolation.level": isolation}
    consumer = clients.consumer(settings.kafka, f"reader-{uuid.uuid4().hex}", **extra)
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[Message] = []
    ended: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(ended) < len(partitions) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                error = message.error()
                if error is None:
                    records.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    ended.add(message.partition() or 0)
    finally:
        consumer.close()
    assert len(ended) == len(partitions), f"{topic} not read to its end in {timeout}s"
    return records


def read_alerts(settings: Settings) -> list[Alert]:
    records = read_topic(settings, settings.topics.alerts)
    alerts = [decode("alert", r.value()) for r in records]  # decode checks the contract
    for record, alert in zip(records, alerts, strict=True):
        assert record.key() == alert.model.encode()
    return alerts


def join_counts(settings: Settings) -> tuple[dict[tuple[str, int], Any], Counter[str]]:
    """The committed join tasks, and their joiners' counts added up."""
    tasks = load_checkpoints(
        settings.kafka,
        settings.run.group_id,
        {"join": [settings.topics.predictions, settings.topics.labels]},
        settings.topics.internal_prefix + "state",
        KEY.encode(),
    )
    return tasks, sum((Counter(t.stage.joiner.counts) for t in tasks.values()), Counter())


def joined_items(settings: Settings, isolation: str = "read_committed") -> Counter[str]:
    """How many times each item key (``p/<id>``, ``y/<id>``) is in the joined topic."""
    records = read_topic(settings, settings.topics.internal_prefix + "joined", isolation)
    items = [i for r in records for i in decode_internal_many(r.value())]
    return Counter(i.key for i in items if isinstance(i, Sequenced))


def alerts_as_replayed(
    tmp: Path, settings: Settings, predictions: list[Prediction], labels: list[Label]
) -> list[Alert]:
    """The alerts topic, checked: each alert once, the alerts ``driftline replay`` gives for
    the same events, and among them the shift of x0 and x1 and the concept change."""
    expected = replay_alerts(tmp, settings, predictions, labels)
    alerts = read_alerts(settings)
    assert len(alerts) == len({a.alert_id for a in alerts}), "an alert was published twice"
    assert keys(alerts) == keys(expected)
    firing = {(a.kind, a.feature) for a in alerts if a.status == "firing"}
    assert {("data_drift", "x0"), ("data_drift", "x1"), ("concept_drift", None)} <= firing
    return alerts


def joined_once(settings: Settings) -> Counter[str]:
    """The committed joined items, checked: none twice, and every prediction among them."""
    items = joined_items(settings)
    assert {k for k, n in items.items() if n > 1} == set(), "a joined item was published twice"
    assert sum(1 for k in items if k.startswith("p/")) == N
    return items


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# -- tests ------------------------------------------------------------------------------------


def test_shift_and_concept_change_give_the_replay_alerts(
    kafka_settings: Settings, tmp: Path
) -> None:
    settings = settings_for(kafka_settings, exit_when_idle=2.0)
    create(settings)
    predictions, labels = stream_events(labelled_every=40)
    labels += labels[:25]  # some labels come twice
    publish(settings, predictions, labels)
    registry = CollectorRegistry()
    report = run_worker(settings, observer=PrometheusObserver(registry), handle_signals=False)

    alerts = alerts_as_replayed(tmp, settings, predictions, labels)
    firing = {(a.kind, a.feature) for a in alerts if a.status == "firing"}
    assert not {f for k, f in firing if k == "data_drift"} - {"x0", "x1"}

    letters = [
        decode("deadletter", r.value()) for r in read_topic(settings, settings.topics.deadletter)
    ]
    assert sorted(d.reason for d in letters) == ["not_json", "schema"]
    assert report.counts["predictions"] == N + len(MALFORMED) and report.counts["dead_letters"] == 2

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("driftline_records_in_total", topic=settings.topics.predictions) == N + 2
    assert sample("driftline_deadletter_total", reason="schema") == 1
    by_kind = Counter((a.kind, a.severity) for a in alerts)
    for (kind, severity), count in by_kind.items():
        assert sample("driftline_alerts_total", kind=kind, severity=severity) == count
    detector = settings.pipeline_spec().monitor.numeric_test
    assert sample("driftline_drift_statistic", model="demo", feature="x0", detector=detector) > 0.5
    assert (
        sample("driftline_state_bytes", stage="monitor", partition="0")
        + sample("driftline_state_bytes", stage="monitor", partition="1")
        > 2 * settings.topics.max_message_bytes  # the monitors' checkpoint took several records
    )
    assert sample("driftline_checkpoint_bytes_total", stage="monitor") >= sample(
        "driftline_state_bytes", stage="monitor", partition="0"
    )
    coverage = sample("driftline_join_coverage_ratio", partition="0")
    assert 0.9 < coverage < 1.0  # one prediction in 40 has no label
    assert sample("driftline_label_delay_seconds_count") == len(labels) - 25

    _, counts = join_counts(settings)
    assert counts["predictions"] == N and counts["joined"] == len(labels) - 25
    assert counts["duplicate_labels"] == 25


def test_kill_9_then_restart_loses_and_repeats_nothing(kafka_settings: Settings, tmp: Path) -> None:
    settings = settings_for(kafka_settings, instance_id="w1")
    create(settings)
    predictions, labels = stream_events(labelled_every=25)
    producer = publish_slowly(settings, predictions, labels, seconds=8)

    # Long transactions for the first worker, so that the kill cuts one short.
    slow = settings.run.model_copy(update={"commit_interval_ms": 2000})
    first = WorkerProcess(settings.model_copy(update={"run": slow}), tmp / "first.log")
    first.wait_for("assigned:")
    time.sleep(3)
    first.signal(signal.SIGKILL)  # mid-stream, a transaction open
    second = WorkerProcess(settings, tmp / "second.log")
    second.wait_for("assigned:")
    time.sleep(2)
    second.signal(signal.SIGTERM)  # graceful: commit, leave
    assert "commits" in second.finish(timeout=30)
    producer.join(60)
    WorkerProcess(settings, tmp / "last.log", "--exit-when-idle", "2").finish()

    expected = replay_alerts(tmp, settings, predictions, labels)
    alerts = read_alerts(settings)
    assert len(alerts) == len({a.alert_id for a in alerts}), "an alert was published twice"
    assert keys(alerts) == keys(expected)
    items = joined_once(settings)
    everything = joined_items(settings, "read_uncommitted")
    assert everything.total() > items.total(), "the kill should have left an aborted transaction"
    outcomes = {k for k in items if k.startswith("y/")}
    assert outcomes == {f"y/{y.event_id}" for y in labels}
    letters = read_topic(settings, settings.topics.deadletter)
    assert len(letters) == len(MALFORMED)
    tasks, counts = join_counts(settings)
    assert counts["predictions"] == N and counts["joined"] == len(labels)
    unlabelled = N - len(labels)
    # every prediction is joined, expired unlabelled, or still waiting for its label (TTL)
    waiting = unlabelled - counts["unlabelled"]
    assert counts["unlabelled"] > 0 and 0 <= waiting <= unlabelled
    last_ts = max(p.ts or 0 for p in predictions)
    expired = {
        p.event_id for p in predictions if (p.ts or 0) + settings.pipeline.join_ttl_ms <= last_ts
    }
    assert counts["unlabelled"] >= len(expired - {y.event_id for y in labels}) - 2 * len(tasks)


def test_a_restart_replays_the_changes_written_after_a_whole_checkpoint(
    kafka_settings: Settings, tmp: Path
) -> None:
    settings = settings_for(kafka_settings)
    create(settings)
    predictions, labels = stream_events()
    cut = predictions[N - 200].ts or 0
    # Another model's predictions that never get a label, five a second over the TTL before
    # the cut: the join tasks hold thousands of them, so once written whole at the first
    # commit after a restore, they are checkpointed as their changes (a few events a commit).
    others = [
        Prediction(f"o{i}", "other", {"x0": float(i % 7)}, 0, ts=cut - 590_000 + 200 * i)
        for i in range(2950)
    ]
    publish(settings, predictions[: N - 200] + others, [y for y in labels if (y.ts or 0) < cut])
    WorkerProcess(settings, tmp / "first.log", "--exit-when-idle", "2").finish()
    rest = [y for y in labels if (y.ts or 0) >= cut]
    producer = publish_slowly(settings, predictions[N - 200 :], rest, seconds=3)
    WorkerProcess(settings, tmp / "second.log", "--exit-when-idle", "2").finish()
    producer.join(60)
    log = WorkerProcess(settings, tmp / "last.log", "--exit-when-idle", "2").finish()
    # both kinds of task: the joins hold the others, the monitors their windows
    assert re.search(r"replayed \([1-9]\d* of join tasks, [1-9]\d* of monitor tasks\)", log), log

    alerts_as_replayed(tmp, settings, predictions + others, labels)
    _, counts = join_counts(settings)
    assert counts["predictions"] == N + len(others) and counts["joined"] == len(labels)
    # expired: the others a TTL older than the newest event (each partition's newest is a
    # little older: a few seconds' worth of others, five a second, may still be held)
    newest = max(e.ts or 0 for e in [*predictions, *labels])
    expired = [o for o in others if (o.ts or 0) + settings.pipeline.join_ttl_ms <= newest]
    assert 0 < len(expired) < len(others)
    assert len(expired) - 25 <= counts["unlabelled"] <= len(expired)


def test_two_workers_give_the_alerts_of_one(kafka_settings: Settings, tmp: Path) -> None:
    settings = settings_for(kafka_settings)
    create(settings)
    predictions, labels = stream_events()
    publish(settings, predictions, labels)
    workers = [WorkerProcess(settings, tmp / f"{i}.log", "--exit-when-idle", "3") for i in (1, 2)]
    logs = [w.finish() for w in workers]
    assert all("assigned: join partitions [" in log for log in logs)
    expected = replay_alerts(tmp, settings, predictions, labels)
    alerts = read_alerts(settings)
    assert len(alerts) == len({a.alert_id for a in alerts})
    assert keys(alerts) == keys(expected)


def test_missing_topics_and_unreachable_broker_say_what_to_do(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(kafka_settings)
    for name, value in worker_env(settings).items():
        if name.startswith("DRIFTLINE_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["run"])
    assert exit_.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: missing topics on {settings.kafka.bootstrap}: ")
    assert last.endswith("run `driftline topics create` with the same settings first")
    away = settings.kafka.model_copy(update={"bootstrap": "127.0.0.1:9"})
    with pytest.raises(BrokerError, match=re.escape("cannot reach Kafka at 127.0.0.1:9 within 1s")):
        check_topics(settings.model_copy(update={"kafka": away}), timeout=1)


def unpicklable(marker: Path) -> bytes:
    """An unsigned checkpoint that would create ``marker`` if it were ever unpickled."""

    class Forged:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))

    return b"\x01" + b"\x00" * 32 + pickle.dumps(Forged())


def plant_state(settings: Settings, records: list[tuple[bytes, bytes]]) -> list[int]:
    """Write ``(key, value)`` records to partition 0 of the state topic; their offsets."""
    producer = clients.producer(settings.kafka)
    delivered: list[int] = []
    for key, value in records:
        producer.produce(
            settings.topics.internal_prefix + "state",
            value,
            key,
            partition=0,
            on_delivery=lambda e, m: delivered.append(m.offset()),
        )
        producer.flush(10)
    return delivered


def commit_location(settings: Settings, where: Location) -> None:
    """Commit the group's offset of predictions[0] as pointing to checkpoints at ``where``."""
    consumer = clients.consumer(settings.kafka, settings.run.group_id)
    consumer.commit(
        offsets=[TopicPartition(settings.topics.predictions, 0, 0, where.metadata())],
        asynchronous=False,
    )
    consumer.close()


def test_a_checkpoint_with_a_bad_signature_is_refused(kafka_settings: Settings, tmp: Path) -> None:
    settings = settings_for(kafka_settings, exit_when_idle=1.0)
    create(settings)
    marker = tmp / "unpickled"
    (offset,) = plant_state(settings, [(b"join/0", unpicklable(marker))])
    commit_location(settings, Location((offset,), 0))
    refused(settings, "signature does not match")
    assert not marker.exists()


@pytest.mark.parametrize("forgery", ["unsigned", "another chain's", "another task's"])
def test_changes_that_do_not_verify_or_follow_their_checkpoint_are_refused(
    kafka_settings: Settings, tmp: Path, forgery: str
) -> None:
    settings = settings_for(kafka_settings, exit_when_idle=1.0)
    create(settings)
    marker = tmp / "unpickled"
    key = KEY.encode()
    whole = seal(dumps(JoinTask(0, PipelineSpec())), key)
    if forgery == "unsigned":  # would create the marker if it were ever unpickled
        changes = unpicklable(marker)
    elif forgery == "another chain's":  # signed, but written after another whole checkpoint
        changes = seal(dumps(JoinChanges(0, 99, 1, [("drain", ())])), key)
    else:  # signed, linked, but a monitor task's (offset 0: the whole checkpoint planted first)
        changes = seal(dumps(MonitorChanges(0, 0, 1, [("drain", ())])), key)
    base, after = plant_state(settings, [(b"join/0", whole), (b"join/0~1", changes)])
    assert base == 0
    commit_location(settings, Location((base,), 0, ((after,),)))
    refused(settings, "signature does not match" if forgery == "unsigned" else "not changes of")
    assert not marker.exists()


def refused(settings: Settings, reason: str) -> None:
    """A worker must stop at once with a ``StateError`` saying ``reason``; a test fails (rather
    than hangs) if it runs on."""
    worker = Worker(settings)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            worker.run()
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive():
        worker.stop()
        thread.join(30)
        pytest.fail("the worker ran on, with a checkpoint it should have refused")
    assert isinstance(outcome[0], StateError), outcome
    assert re.search(reason, str(outcome[0])), outcome[0]


@pytest.mark.skipif(
    os.environ.get("DRIFTLINE_TEST_BROKER_RESTART") != "1",
    reason="restarts the broker: set DRIFTLINE_TEST_BROKER_RESTART=1 with a kafka-local broker",
)
def test_a_broker_restart_is_survived(kafka_settings: Settings, tmp: Path) -> None:
    port = kafka_settings.kafka.bootstrap.rsplit(":", 1)[1]
    env = {**os.environ, "KAFKA_LOCAL_PORT": port, "KAFKA_LOCAL_KEEP_DATA": "1"}
    script = str(ROOT / "docker" / "kafka-local" / "kafka-local")
    settings = settings_for(kafka_settings, idle_ms=20_000)
    create(settings)
    predictions, labels = stream_events()
    producer = publish_slowly(settings, predictions, labels, seconds=10)
    worker = WorkerProcess(settings, tmp / "worker.log")
    worker.wait_for("assigned:")
    time.sleep(3)
    subprocess.run([script, "stop"], env=env, check=True)
    time.sleep(3)
    subprocess.run([script, "start"], env=env, check=True)
    producer.join(120)
    expected = replay_alerts(tmp, settings, predictions, labels)
    deadline = time.monotonic() + 180
    alerts: list[Alert] = []
    while time.monotonic() < deadline and keys(alerts) != keys(expected):
        time.sleep(3)
        alerts = read_alerts(settings)
    worker.signal(signal.SIGTERM)
    worker.finish(timeout=60)
    assert len(alerts) == len({a.alert_id for a in alerts})
    assert keys(alerts) == keys(expected)
