"""The SDK on a real broker: registry, subscriber hot swaps, a >5 MB model, rollback, the CLI,
the prediction logger and the alert subscriber."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from kafka_util import read_all
from retrain_helpers import KEY, concept_alert, outcomes
from river import forest

from driftline.codec import decode, encode
from driftline.events import ModelVersion
from driftline.models import FLAVOR, Release, Retrainer, RetrainSpec, load_verified, pack, sign
from driftline.models.artifact import digest
from driftline.models_cli import models as models_cli
from driftline.sdk import AlertSubscriber, ModelRegistry, ModelSubscriber, PredictionLogger
from driftline.settings import ModelsSettings, Settings
from driftline.streams import clients
from driftline.streams.artifacts import LocalArtifactStore, fetch

pytestmark = pytest.mark.kafka
SPEC = RetrainSpec(learner="logistic_regression", min_events=300, refresh_every=0)


@pytest.fixture
def settings(kafka_settings: Settings, tmp_path: Path) -> Settings:
    models = ModelsSettings(key=KEY.decode(), artifact_dir=str(tmp_path / "artifacts"))
    return kafka_settings.model_copy(update={"models": models})


def _until(condition: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _big_release(version: int, parent: int) -> tuple[Release, object]:
    """A real model over 5 MB: a random forest of deep trees, compressed."""
    forest_model = forest.ARFClassifier(n_models=10, grace_period=10, seed=1)
    for p, y in outcomes(2500, seed=7):
        forest_model.learn_one(dict(p.features), y.label)
    data = pack(forest_model)
    assert len(data) > 5 << 20, f"only {len(data)} bytes"
    event = ModelVersion("m", version, 10**13, "manual", FLAVOR, digest(data), "", {}, parent)
    return Release(
        dataclasses.replace(sign(event, KEY), artifact_size=len(data)), data
    ), forest_model


def test_subscriber_gets_the_current_version_then_hot_swaps_including_a_big_one(
    settings: Settings,
) -> None:
    registry = ModelRegistry(settings)
    registry.ensure_topics()
    retrainer = Retrainer("m", SPEC, KEY)
    data = outcomes(2400, change_at=1200, seed=1)
    releases = retrainer.learn_many(data[:1300])
    retrainer.on_alert(concept_alert("m", data[1299][1].ts or 0))
    releases += retrainer.learn_many(data[1300:])
    assert [r.event.reason for r in releases][:2] == ["initial", "drift"]
    for release in releases:
        registry.publish(release)
    latest = releases[-1].event.version

    swaps: list[int] = []
    with ModelSubscriber(settings, "m", on_update=lambda e, m: swaps.append(e.version)) as sub:
        assert sub.wait(30) and _until(lambda: sub.version == latest)
        assert swaps[-1] == latest  # the current version at start, without a new promotion

        big, original = _big_release(latest + 1, latest)
        published = registry.publish(big)
        assert published.artifact is None and published.artifact_uri
        assert _until(lambda: sub.version == latest + 1, 60)
        sample = [p.features for p, _ in data[:50]]
        assert [sub.predict_one(x) for x in sample] == [
            original.predict_one(dict(x))
            for x in sample  # type: ignore[attr-defined]
        ]

        forged = dataclasses.replace(releases[0].event, version=latest + 2)  # not re-signed
        registry.publish(forged)
        assert _until(lambda: sub.refused["unverified"] == 1)
        assert sub.version == latest + 1

    history = registry.history("m")
    assert [e.version for e in history] == list(range(1, latest + 3))
    assert registry.current()["m"].version == latest + 2

    rolled = registry.rollback("m", 1, now_ms=10**13 + 1)
    assert (rolled.version, rolled.reason, rolled.parent_version) == (
        latest + 3,
        "rollback",
        latest + 2,
    )
    assert rolled.sha256 == history[0].sha256
    store = LocalArtifactStore(settings.models.artifact_dir)
    model = load_verified(rolled, fetch(rolled, store), KEY)
    assert model.predict_one({"x0": 1.0, "x1": 1.0}) in (0, 1)
    registry.close()


def test_models_cli_lists_shows_and_rolls_back(settings: Settings) -> None:
    registry = ModelRegistry(settings)
    registry.ensure_topics()
    retrainer = Retrainer("m", SPEC, KEY)
    registry.publish(retrainer.learn_many(outcomes(400))[0])
    registry.publish(retrainer.publish(ts=10**13))
    registry.close()
    runner = CliRunner()
    listed = runner.invoke(models_cli, ["list"], obj=settings)
    assert listed.exit_code == 0, listed.output
    assert "m " in listed.output and " 2 manual" in listed.output
    shown = runner.invoke(models_cli, ["show", "m", "1"], obj=settings)
    assert shown.exit_code == 0 and '"reason": "initial"' in shown.output
    rolled = runner.invoke(models_cli, ["rollback", "m"], obj=settings)
    assert rolled.exit_code == 0, rolled.output
    assert "version 3 published, serving version 1" in rolled.output
    history = runner.invoke(models_cli, ["list", "m"], obj=settings)
    assert [line.split()[2] for line in history.output.splitlines()[1:]] == [
        "initial",
        "manual",
        "rollback",
    ]


def test_prediction_logger_publishes_contract_events(settings: Settings) -> None:
    with PredictionLogger(settings, "m") as logger:
        ids = [logger.prediction({"x": float(i), "c": "a"}, i % 2, ts=1000 + i) for i in range(50)]
        for i, event_id in enumerate(ids):
            logger.label(event_id, i % 2, ts=2000 + i)
    assert logger.counts["delivered"] == 100 and logger.counts["dropped"] == 0
    predictions = [
        decode("prediction", m.value())
        for m in read_all(settings.kafka, settings.topics.predictions, 50)
    ]
    assert sorted(p.event_id for p in predictions) == sorted(ids)
    labels = read_all(settings.kafka, settings.topics.labels, 50)
    assert {m.key().decode() for m in labels} == set(ids)


def test_prediction_logger_counts_what_it_cannot_queue() -> None:
    nowhere = Settings.load(kafka={"bootstrap": "127.0.0.1:1"})
    logger = PredictionLogger(nowhere, "m", max_queue=5, block_ms=5)
    started = time.monotonic()
    for i in range(20):
        logger.prediction({"x": 1.0}, 0, event_id=str(i))
    assert time.monotonic() - started < 5  # it never blocks for long
    assert logger.counts["queued"] == 5 and logger.counts["dropped"] == 15
    logger.close(timeout=0.1)


def test_alert_subscriber_filters_and_iterates(settings: Settings) -> None:
    producer = clients.producer(settings.kafka)
    alerts = [
        concept_alert("m", 1, "a1"),
        concept_alert("other", 2, "a2"),
        concept_alert("m", 3, "a3", kind="data_drift"),
        concept_alert("m", 4, "a4"),
    ]
    for alert in alerts:
        producer.produce(settings.topics.alerts, encode(alert), alert.model.encode())
    producer.produce(settings.topics.alerts, b"{not json", b"m")
    producer.flush(30)
    got: list[str] = []
    subscriber = AlertSubscriber(
        settings, models={"m"}, kinds={"concept_drift"}, from_beginning=True
    )

    def collect() -> None:
        for alert in subscriber:
            got.append(alert.alert_id)
            if len(got) == 2:
                subscriber.close()

    worker = threading.Thread(target=collect)
    worker.start()
    worker.join(60)
    subscriber.close()
    assert not worker.is_alive() and got == ["a1", "a4"]
