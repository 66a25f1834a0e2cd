"""driftline against a broker that authenticates (SASL_PLAINTEXT, SCRAM-SHA-512 by default).

The listener and its user come from the ``kafka_sasl_broker`` fixture (``tests/conftest.py``):
kafka-local's second listener, or ``DRIFTLINE_TEST_KAFKA_SASL_BOOTSTRAP``. The credentials are
given as a user gives them, through settings (``DRIFTLINE_KAFKA_*`` for the subprocesses), and
every client of a test talks to that listener only. Helpers come from ``test_runtime_kafka``.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka_util import SaslBroker
from pydantic import SecretStr
from test_faust_kafka import FaustProcess
from test_runtime_kafka import (
    MALFORMED,
    ROOT,
    N,
    WorkerProcess,
    alerts_as_replayed,
    create,
    joined_once,
    keys,
    publish,
    read_alerts,
    read_topic,
    replay_alerts,
    settings_for,
    stream_events,
    worker_env,
)

from driftline.datasets import drifting_stream
from driftline.errors import BrokerError
from driftline.events import Alert, Prediction
from driftline.models import Retrainer, RetrainSpec
from driftline.sdk import AlertSubscriber, ModelRegistry, ModelSubscriber, PredictionLogger
from driftline.settings import ModelsSettings, Settings
from driftline.streams.clients import check_reachable

pytestmark = pytest.mark.kafka


def settings_on(broker: SaslBroker, prefix: str) -> Settings:
    """The runtime tests' settings on ``broker``'s listener, with topics of this test's own (and
    records big enough for a whole checkpoint: `driftline topics create` makes the topics)."""
    suffix = uuid.uuid4().hex[:8]
    names = ("predictions", "labels", "alerts", "models", "deadletter")
    topics = {name: f"{prefix}{suffix}.{name}" for name in names}
    topics["internal_prefix"] = f"{prefix}{suffix}.internal."
    base = Settings.load(kafka=broker.kafka(), topics={**topics, "partitions": 2})
    settings = settings_for(base)
    big = settings.topics.model_copy(update={"max_message_bytes": 8 << 20})
    return settings.model_copy(update={"topics": big})


@pytest.fixture
def sasl_settings(kafka_sasl_broker: SaslBroker) -> Settings:
    return settings_on(kafka_sasl_broker, "sasl")


def driftline(
    settings: Settings, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """``python -m driftline ARGS`` with the settings as ``DRIFTLINE_*`` variables."""
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args],
        env=worker_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def subscribed_alerts(settings: Settings, count: int, timeout: float = 30) -> list[Alert]:
    """The alerts an SDK ``AlertSubscriber`` reads from the start of the topic."""
    out: list[Alert] = []
    deadline = time.monotonic() + timeout
    with AlertSubscriber(settings, from_beginning=True) as subscriber:
        while len(out) < count and time.monotonic() < deadline:
            out += subscriber.poll(0.5)
    return out


def test_topics_create_logger_run_and_subscriber_authenticate_with_scram(
    sasl_settings: Settings, kafka_sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    settings, password = sasl_settings, kafka_sasl_broker.password
    env = kafka_sasl_broker.env()
    created = driftline(settings, env, "topics", "create")
    assert created.returncode == 0, created.stderr
    assert created.stdout.count("created ") == 8, created.stdout

    # The services' side: the SDK's logger publishes the stream over SASL.
    predictions, labels = stream_events(labelled_every=40)
    with PredictionLogger(settings, "demo") as logger:
        for event in sorted([*predictions, *labels], key=lambda e: e.ts or 0):
            if isinstance(event, Prediction):
                logger.prediction(
                    event.features,
                    event.prediction,
                    event_id=event.event_id,
                    ts=event.ts,
                    model_version=event.model_version,
                    scores=event.scores,
                    tags=event.tags,
                )
            else:
                logger.label(event.event_id, event.label, ts=event.ts)
    assert logger.counts["delivered"] == len(predictions) + len(labels), logger.counts
    assert logger.counts["dropped"] == logger.counts["failed"] == 0

    worker = WorkerProcess(settings, tmp_path / "worker.log", "--exit-when-idle", "2", env=env)
    log = worker.finish()
    assert f"{N} predictions, {len(labels)} labels" in log, log

    alerts = alerts_as_replayed(tmp_path, settings, predictions, labels)
    # every prediction reached the monitors once, labelled or not, and every label joined
    items = joined_once(settings)
    assert {k for k in items if k.startswith("y/")} == {f"y/{y.event_id}" for y in labels}

    # The on-call side: the SDK's alert subscriber reads the same alerts over SASL.
    subscribed = subscribed_alerts(settings, len(alerts))
    assert sorted(a.alert_id for a in subscribed) == sorted(a.alert_id for a in alerts)

    assert password not in created.stdout + created.stderr + log


def test_the_model_registry_and_subscriber_authenticate_with_scram(
    sasl_settings: Settings, kafka_sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    key = "models-key-for-sasl-0123456789abcdef"
    models = ModelsSettings(key=key, artifact_dir=str(tmp_path / "artifacts"))
    settings = sasl_settings.model_copy(update={"models": models})
    env = {**kafka_sasl_broker.env(), "DRIFTLINE_MODELS_KEY": key}
    env["DRIFTLINE_MODELS_ARTIFACT_DIR"] = models.artifact_dir
    assert driftline(settings, env, "topics", "create").returncode == 0

    # A trainer publishes through the registry, a serving process subscribes: both over SCRAM.
    stream = drifting_stream(400, seed=1)
    spec = RetrainSpec(learner="logistic_regression", min_events=300, refresh_every=0)
    retrainer = Retrainer("demo", spec, key.encode())
    releases = retrainer.learn_many(zip(stream.predictions, stream.labels, strict=True))
    assert releases
    registry = ModelRegistry(settings)
    try:
        registry.ensure_topics()
        published = registry.publish(releases[0])
    finally:
        registry.close()
    with ModelSubscriber(settings, "demo") as subscriber:
        deadline = time.monotonic() + 30
        while subscriber.version != published.version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert subscriber.version == published.version and not subscriber.refused
        assert subscriber.model.predict_one(dict(stream.predictions[0].features)) in (0, 1)

    listed = driftline(settings, env, "models", "list")
    assert listed.returncode == 0 and "demo" in listed.stdout, listed.stderr
    assert kafka_sasl_broker.password not in listed.stdout + listed.stderr


def test_a_wrong_password_is_a_prompt_one_line_error_that_hides_it(
    sasl_settings: Settings,
    kafka_sasl_broker: SaslBroker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    kafka = sasl_settings.kafka.model_copy(update={"sasl_password": SecretStr(wrong)})
    started = time.monotonic()
    with pytest.raises(BrokerError) as refused:
        check_reachable(kafka, timeout=30)
    assert time.monotonic() - started < 10, "waited for the timeout, not for the broker's answer"
    message = str(refused.value)
    who = f"user {kafka_sasl_broker.username} (SASL {kafka_sasl_broker.mechanism})"
    assert message.startswith(f"authentication failed for {who} at {kafka.bootstrap}: "), message
    assert message.endswith(
        "check DRIFTLINE_KAFKA_SASL_USERNAME, DRIFTLINE_KAFKA_SASL_PASSWORD and "
        "DRIFTLINE_KAFKA_SASL_MECHANISM (or [kafka] in the config file)"
    ), message
    assert "\n" not in message and wrong not in message
    assert all(wrong not in record.getMessage() for record in caplog.records)

    # The commands users run say the same, as their last line, and log no password.
    env = kafka_sasl_broker.env(sasl_password=wrong)
    for command in (["topics", "create"], ["run"]):
        done = driftline(sasl_settings, env, *command)
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: authentication failed for {who} at "), done.stderr
        assert "DRIFTLINE_KAFKA_SASL_PASSWORD" in last
        assert wrong not in done.stdout + done.stderr


def test_faust_authenticates_with_scram_and_gives_the_replay_alerts(
    sasl_settings: Settings, kafka_sasl_broker: SaslBroker, tmp_path: Path
) -> None:
    settings = sasl_settings
    create(settings)
    predictions, labels = stream_events(labelled_every=40)
    publish(settings, predictions, labels)
    env = kafka_sasl_broker.env()
    faust = FaustProcess(settings, tmp_path / "faust.log", "--exit-when-idle", "2", env=env)
    log = faust.finish(timeout=90)

    expected = replay_alerts(tmp_path, settings, predictions, labels)
    alerts = read_alerts(settings)
    assert keys(alerts) == keys(expected)
    firing = {(a.kind, a.feature) for a in alerts if a.status == "firing"}
    assert {("data_drift", "x0"), ("data_drift", "x1"), ("concept_drift", None)} <= firing
    assert len(read_topic(settings, settings.topics.deadletter)) == len(MALFORMED)
    assert kafka_sasl_broker.password not in log
