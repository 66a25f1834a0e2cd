"""``driftline faust`` against a real broker: the replay's alerts, and none lost through a crash.

The worker runs as a subprocess (``python -m driftline faust``), so that faust's event loop and
signal handling stay out of pytest. Helpers come from ``test_runtime_kafka``.
"""

from __future__ import annotations

import ast
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_retrain_kafka import comparable, models_env, published, replay_versions, with_models
from test_runtime_kafka import (
    MALFORMED,
    ROOT,
    WorkerProcess,
    alerts_as_replayed,
    create,
    keys,
    publish,
    publish_slowly,
    read_alerts,
    read_topic,
    replay_alerts,
    settings_for,
    stream_events,
    worker_env,
)

from driftline.cli import main
from driftline.codec import decode
from driftline.events import ModelVersion
from driftline.models import load_verified
from driftline.settings import Settings
from driftline.streams.artifacts import LocalArtifactStore, fetch

pytestmark = pytest.mark.kafka


class FaustProcess(WorkerProcess):
    """``driftline faust`` in a subprocess, its stderr in a file."""

    def __init__(
        self, settings: Settings, log: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.log = log
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftline", "faust", "--loglevel", "info", *args],
                env=worker_env(settings, **(env or {})),
                stderr=handle,
                stdout=handle,
                cwd=ROOT,
            )

    def finish(self, timeout: float = 120) -> str:
        out = super().finish(timeout)
        assert "later than pipeline.lateness_ms" not in out, "an event was monitored out of order"
        return out


def faust_settings(base: Settings) -> Settings:
    """The runtime tests' settings, with records big enough for a whole checkpoint."""
    settings = settings_for(base)
    topics = settings.topics.model_copy(update={"max_message_bytes": 8 << 20})
    return settings.model_copy(update={"topics": topics})


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_faust_gives_the_replay_alerts_and_dead_letters(
    kafka_settings: Settings, tmp: Path
) -> None:
    settings = faust_settings(kafka_settings)
    create(settings)
    predictions, labels = stream_events(labelled_every=40)
    publish(settings, predictions, labels)
    FaustProcess(settings, tmp / "faust.log", "--exit-when-idle", "2").finish(timeout=60)

    alerts_as_replayed(tmp, settings, predictions, labels)
    letters = [
        decode("deadletter", r.value()) for r in read_topic(settings, settings.topics.deadletter)
    ]
    assert sorted(d.reason for d in letters) == ["not_json", "schema"]
    assert {d.topic for d in letters} == {settings.topics.predictions}
    assert {d.value_b64 is not None and d.offset is not None for d in letters} == {True}


def test_faust_killed_mid_stream_loses_no_alert(kafka_settings: Settings, tmp: Path) -> None:
    settings = faust_settings(kafka_settings)
    create(settings)
    predictions, labels = stream_events(labelled_every=25)
    producer = publish_slowly(settings, predictions, labels, seconds=10)
    first = FaustProcess(settings, tmp / "first.log")
    first.wait_for("new task join/")  # processing
    time.sleep(3)
    first.signal(signal.SIGKILL)  # mid-stream, with outputs not yet checkpointed
    producer.join(60)
    second = FaustProcess(settings, tmp / "second.log", "--exit-when-idle", "2")
    log = second.finish(timeout=60)
    restored = re.findall(r"restored (join|monitor)/\d+ at offsets (\{.*\})", log)
    assert {stage for stage, _ in restored} == {"join", "monitor"}, "no checkpoint to resume from"
    total = len(predictions) + len(MALFORMED) + len(labels)
    read = sum(
        sum(ast.literal_eval(offsets).values()) for stage, offsets in restored if stage == "join"
    )
    assert 0 < read < total, "the kill should have come mid-stream"

    expected = replay_alerts(tmp, settings, predictions, labels)
    alerts = read_alerts(settings)
    assert keys(alerts) == keys(expected), "an alert is missing (or one is not the replay's)"
    repeats = Counter(a.alert_id for a in alerts)
    print(f"{sum(n - 1 for n in repeats.values())} alerts repeated after the kill")
    letters = read_topic(settings, settings.topics.deadletter)
    assert len(letters) >= len(MALFORMED)


@pytest.fixture
def retraining(kafka_settings: Settings, tmp: Path) -> tuple[Settings, dict[str, str]]:
    """Settings of a faust worker that retrains (its topics created), and its environment."""
    settings = with_models(faust_settings(kafka_settings), tmp / "store")
    create(settings)
    return settings, models_env(settings)


def test_faust_retrains_and_publishes_the_replay_versions(
    retraining: tuple[Settings, dict[str, str]], tmp: Path
) -> None:
    settings, env = retraining
    predictions, labels = stream_events()
    publish(settings, predictions, labels)
    log = FaustProcess(settings, tmp / "faust.log", "--exit-when-idle", "2", env=env).finish(90)

    expected = replay_versions(tmp, settings, predictions, labels)
    assert [v.reason for v in expected][:3] == ["initial", "drift", "scheduled"]
    history, current = published(settings)
    assert [comparable(v) for v in history] == [comparable(v) for v in expected]
    assert [v.version for v in current] == [v.version for v in expected]
    store = LocalArtifactStore(settings.models.artifact_dir)
    for version in history:  # by reference (over max_inline_bytes), signed with the key
        assert version.artifact is None and version.artifact_uri is not None
        load_verified(version, fetch(version, store), settings.models.key_bytes())
    assert f"published demo v{len(expected)}" in log


def test_faust_killed_while_retraining_loses_no_version(
    retraining: tuple[Settings, dict[str, str]], tmp: Path
) -> None:
    settings, env = retraining
    predictions, labels = stream_events()
    producer = publish_slowly(settings, predictions, labels, seconds=10)
    first = FaustProcess(settings, tmp / "first.log", env=env)
    first.wait_for("published demo v1")
    first.signal(signal.SIGKILL)  # after a version, its checkpoint perhaps not yet written
    producer.join(60)
    FaustProcess(settings, tmp / "second.log", "--exit-when-idle", "2", env=env).finish(90)

    expected = [comparable(v) for v in replay_versions(tmp, settings, predictions, labels)]
    history, current = published(settings)
    # at least once: every version, in order; a repeat is the same version again
    distinct: list[ModelVersion] = []
    for version in map(comparable, history):
        distinct += [] if version in distinct else [version]
    assert distinct == expected
    assert [v.version for v in current][-1] == len(expected)
    print(f"{len(history) - len(expected)} versions published again after the kill")


def test_faust_says_what_to_do_about_missing_topics_and_tls(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = faust_settings(kafka_settings)
    for name, value in worker_env(settings).items():
        if name.startswith("DRIFTLINE_"):
            monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["faust"])
    assert exit_.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: missing topics on {settings.kafka.bootstrap}: ")
    monkeypatch.setenv("DRIFTLINE_KAFKA_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(SystemExit):
        main(["faust"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: driftline faust connects with PLAINTEXT, SASL_PLAINTEXT or")
