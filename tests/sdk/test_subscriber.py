"""``ModelSubscriber.handle``, the in-memory seam: what is loaded, what is refused, and why."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from retrain_helpers import KEY, outcomes

from driftline.codec import encode
from driftline.models import Release, Retrainer, RetrainSpec
from driftline.sdk import ModelNotReady, ModelSubscriber
from driftline.settings import Settings
from driftline.streams.artifacts import LocalArtifactStore, deliver

SPEC = RetrainSpec(learner="logistic_regression", min_events=200, refresh_every=0)


@pytest.fixture
def releases() -> list[Release]:
    retrainer = Retrainer("m", SPEC, KEY)
    first = retrainer.learn_many(outcomes(300))
    return [*first, retrainer.publish(ts=10**13)]


def _subscriber(tmp_path: Path, **kwargs: object) -> ModelSubscriber:
    settings = Settings.load(models={"key": KEY.decode(), "artifact_dir": str(tmp_path)})
    return ModelSubscriber(settings, "m", start=False, **kwargs)  # type: ignore[arg-type]


def test_loads_verified_versions_in_order_and_calls_back(
    tmp_path: Path, releases: list[Release]
) -> None:
    seen: list[int] = []
    subscriber = _subscriber(tmp_path, on_update=lambda event, model: seen.append(event.version))
    with pytest.raises(ModelNotReady):
        subscriber.predict_one({"x0": 1.0})
    assert subscriber.handle(encode(releases[1].event))
    assert not subscriber.handle(encode(releases[0].event))  # older: ignored
    assert subscriber.version == 2 and seen == [2]
    assert subscriber.predict_one({"x0": 1.0, "x1": 1.0}) == 1
    assert subscriber.wait(0)


def test_large_artifacts_are_read_from_the_store(tmp_path: Path, releases: list[Release]) -> None:
    big = dataclasses.replace(
        releases[0], event=dataclasses.replace(releases[0].event, artifact=None)
    )
    event = deliver(big, LocalArtifactStore(tmp_path))
    assert event.artifact_uri and event.artifact_uri.startswith("file://")
    assert _subscriber(tmp_path).handle(encode(event))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"signature": ""}, "unsigned"),
        ({"signature": "0" * 64}, "signature does not match"),
        ({"created_ts": 1}, "signature does not match"),
        ({"sha256": "0" * 64}, "signature does not match"),
        ({"artifact": "QUJD"}, "do not match the signed sha256"),
        ({"artifact": None}, "no artifact and no artifact_uri"),
    ],
)
def test_refuses_unsigned_or_mismatched_versions_with_a_logged_reason(
    tmp_path: Path,
    releases: list[Release],
    change: dict[str, object],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscriber = _subscriber(tmp_path)
    bad = dataclasses.replace(releases[0].event, **change)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="driftline.sdk"):
        assert not subscriber.handle(encode(bad))
    assert subscriber.refused["unverified"] == 1 and subscriber.version is None
    assert reason in caplog.text


def test_refuses_records_that_are_not_events_and_versions_of_another_key(
    tmp_path: Path, releases: list[Release]
) -> None:
    subscriber = _subscriber(tmp_path)
    assert not subscriber.handle(b"{not json")
    assert not subscriber.handle(None)
    assert subscriber.refused["not_an_event"] == 2
    other = _subscriber(tmp_path, key=b"another-key-of-32-bytes-xxxxxxxx")
    assert not other.handle(encode(releases[0].event))
    assert other.refused["unverified"] == 1
